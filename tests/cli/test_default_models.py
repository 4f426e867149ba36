"""The built-in default models: `engine run --task ner` with no --model on the shipped
sample, the default sentiment model, and their quality on the shared test splits
(agreement with the spaCy teacher for NER; see ../shared/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import nlpengine
from cli_fixtures import engine
from test_shared_data import shared_file

ROOT = Path(__file__).resolve().parents[2]
# What the shipped NER adapter reaches (issue 4 targets 0.80; a regression guard until a
# better model is trained, see the README's "Built-in models").
NER_F1_FLOOR = 0.66


def test_engine_run_ner_uses_the_built_in_model(tmp_path):
    out = tmp_path / "entities.jsonl"
    engine(
        "run", "--task", "ner", "--input", ROOT / "examples" / "ner_sample.jsonl", "--output", out
    )
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["id"] for r in records] == [f"s{i}" for i in range(1, 9)]
    found = {(e["text"], e["label"]) for e in records[0]["entities"]}
    assert ("Marie Curie", "PERSON") in found and ("Paris", "GPE") in found, found
    assert ("today", "DATE") in {(e["text"], e["label"]) for e in records[-1]["entities"]}


def test_default_sentiment_model():
    classify = nlpengine.pipeline("classification")
    results = classify(["What a wonderful, moving film.", "The service was rude and slow."])
    assert [r[0]["label"] for r in results] == ["positive", "negative"]


def test_default_ner_agreement_with_the_teacher_on_the_silver_test_split():
    metrics = json.loads(
        engine(
            "eval", "--task", "ner", "--data", shared_file("ner/silver/test.conll"), "--json"
        ).stdout
    )
    print({"f1": metrics["f1"], "precision": metrics["precision"], "recall": metrics["recall"]})
    assert metrics["f1"] >= NER_F1_FLOOR


def test_default_sentiment_accuracy_on_the_test_split():
    metrics = json.loads(
        engine(
            "eval",
            "--task",
            "classification",
            "--data",
            shared_file("classification/sentiment/test.jsonl"),
            "--json",
        ).stdout
    )
    print({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
    assert metrics["accuracy"] >= 0.85
