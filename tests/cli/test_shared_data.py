"""`engine run` and `engine eval` on the real labelled files in ../shared/data (see its
README). The models here have random weights, so the scores only show that real files
flow through end to end; the data is read at test time and never copied into the repo."""

from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

from cli_fixtures import engine, ner_model_dir, sentiment_model_dir  # noqa: F401

SHARED_DATA = Path(
    os.environ.get("NLPENGINE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
SENTENCES = 300


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    assert path.is_file(), f"{path} is missing: the shared data must sit beside the repository"
    return path


def first_conll_sentences(source: Path, target: Path, count: int) -> Path:
    """Copies the first ``count`` sentences (with their comment lines) to ``target``."""
    blocks = source.read_text("utf-8").split("\n\n")
    target.write_text("\n\n".join(blocks[:count]) + "\n\n", "utf-8")
    return target


def test_ner_run_and_eval_on_the_silver_conll(tmp_path, ner_model_dir):  # noqa: F811
    conll = first_conll_sentences(
        shared_file("ner/silver/test.conll"), tmp_path / "test.conll", SENTENCES
    )
    out = tmp_path / "entities.jsonl"
    engine("run", "--task", "ner", "--model", ner_model_dir, "--input", conll, "--output", out)
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(records) == SENTENCES
    metrics = json.loads(
        engine("eval", "--task", "ner", "--model", ner_model_dir, "--data", conll, "--json").stdout
    )
    assert metrics["sentences"] == SENTENCES
    assert 0.0 <= metrics["f1"] <= 1.0 and metrics["support"] > 0
    assert set(metrics["per_type"]) >= {"PERSON", "ORG"}  # the silver types, from the gold side


def test_classification_eval_on_the_sentiment_split(tmp_path, sentiment_model_dir):  # noqa: F811
    source = shared_file("classification/sentiment/test.jsonl")
    with source.open(encoding="utf-8") as f:
        lines = list(islice(f, SENTENCES))
    data = tmp_path / "test.jsonl"
    data.write_text("".join(lines), "utf-8")
    metrics = json.loads(
        engine(
            "eval",
            "--task",
            "classification",
            "--model",
            sentiment_model_dir,
            "--data",
            data,
            "--json",
        ).stdout
    )
    assert metrics["num_examples"] == SENTENCES
    assert set(metrics["per_class"]) == {"negative", "positive"}
    out = tmp_path / "labels.jsonl"
    engine(
        "run",
        "--task",
        "classification",
        "--model",
        sentiment_model_dir,
        "--input",
        data,
        "--output",
        out,
    )
    ids = [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()]
    assert ids == [json.loads(line)["id"] for line in lines]
