"""``engine train --task recommendation``: a tiny BERT trained as a bi-encoder (InfoNCE with
in-batch negatives) and as a cross-encoder (binary cross entropy) on synthetic items and
interactions written here; the outputs load in the runtime pipeline (and the
cross-encoder in transformers, with equal logits)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import engine, save_tiny_base

GENRES = ["western", "musical", "thriller", "cartoon"]


def write_data(d: Path) -> dict:
    """Items of four genres; each user likes one genre and rates its items over time."""
    rng = random.Random(5)
    items = [{"item_id": n, "text": f"a {GENRES[n % 4]} film number {n}"} for n in range(24)]
    rows = {"train": [], "dev": [], "test": []}
    for user in range(16):
        genre = user % 4
        liked = [n for n in range(24) if n % 4 == genre]
        rng.shuffle(liked)
        for t, item in enumerate(liked):
            split = "train" if t < 4 else ("dev" if t == 4 else "test")
            rating = float(rng.choice([3, 4, 5]))
            rows[split].append({"user_id": f"u{user}", "item_id": item, "rating": rating,
                                "timestamp": t})  # fmt: skip
    files = {"items": d / "items.jsonl"}
    files["items"].write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
    for split, data in rows.items():
        files[split] = d / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in data), "utf-8")
    return files


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("rec-train"))


def _train(base, data, out, *extra):
    engine(
        "train", "--task", "recommendation", "--base", base, "--train", data["train"],
        "--dev", data["dev"], "--out", out, "--items", data["items"],
        "--interactions", data["train"], "--epochs", "2", "--batch-size", "8",
        "--learning-rate", "1e-3", "--max-length", "16", "--threads", "2", *extra,
    )  # fmt: skip
    return json.loads((out / "training_log.json").read_text())


def test_bi_encoder_training_runs_and_the_output_ranks(tmp_path, data):
    import nlpengine
    from nlpengine_recommendation import RecommendationPipeline
    from nlpengine_recommendation.request import parse_request

    base = save_tiny_base(tmp_path / "base", dropout=0.0)
    out = tmp_path / "bi"
    log = _train(base, data, out, "--max-history", "3")
    assert len(log["history"]) == 2 and log["config"]["task_options"]["max_history"] == 3
    assert all(np.isfinite(h["train_loss"]) for h in log["history"])
    assert "ndcg@10" in log["history"][0]["metrics"]
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling",
                                                              "Normalize"]  # fmt: skip
    assert nlpengine.load(out).head is None
    pipe = RecommendationPipeline(out, items=data["items"], interactions=data["train"])
    assert pipe.mode == "bi-encoder" and pipe.normalize
    result = pipe([parse_request({"user_id": "u0"})])[0]
    assert len(result["items"]) == 10
    metrics = json.loads(
        engine("eval", "--task", "recommendation", "--model", out, "--data", data["test"],
               "--items", data["items"], "--interactions", data["train"], "--json").stdout
    )  # fmt: skip
    assert metrics["users"] == 16


def test_cross_encoder_training_loads_in_transformers_and_the_runtime(tmp_path, data):
    from nlpengine_recommendation import RecommendationPipeline
    from nlpengine_recommendation.request import parse_request
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    base = save_tiny_base(tmp_path / "base", dropout=0.0)
    out = tmp_path / "cross"
    log = _train(base, data, out, "--mode", "cross-encoder")
    assert len(log["history"]) == 2
    reference = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert reference.config.num_labels == 1
    pipe = RecommendationPipeline(out, items=data["items"], interactions=data["train"], top_k=0)
    assert pipe.mode == "cross-encoder"
    result = pipe([parse_request({"text": "a western fan", "candidates": [0, 1, 2]})])[0]
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.no_padding()
    for entry in result["items"]:
        enc = tokenizer.encode("a western fan", f"a {GENRES[entry['item_id'] % 4]} film number "
                               f"{entry['item_id']}")  # fmt: skip
        with torch.no_grad():
            logit = reference(input_ids=torch.tensor([enc.ids]),
                              token_type_ids=torch.tensor([enc.type_ids])).logits[0, 0]  # fmt: skip
        assert abs(float(logit) - entry["score"]) < 1e-4
