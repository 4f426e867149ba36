#!/usr/bin/env python3
"""How much the fast compute types change the built-in models' answers.

Runs the default NER model on ``../shared/data/ner/silver/test.conll`` and the default
sentiment model on ``../shared/data/classification/sentiment/test.jsonl`` with every
compute type, and scores each fast type's predictions against the float32 model's own
predictions (entity-level F1, seqeval's strict IOB2 mode, for NER; accuracy for
sentiment) and against the data's labels. The compute types run one after another in
this process (a pipeline per type, selected through ``NLPENGINE_COMPUTE_TYPE`` as
``engine run --compute-type`` does); nothing is timed here.

    python benchmarks/task_agreement.py                 # int8, bf16, int8-mixed against float32
    python benchmarks/task_agreement.py --compute-types int8 --threads 2

Writes ``benchmarks/results/task_agreement.json`` and prints a markdown table. The data
is internal (see ../shared/data/README.md): only scores are written.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import nlpengine
from nlpengine.io import read_records
from nlpengine.runtime import COMPUTE_TYPE_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "task_agreement.json"


def read(path: Path, fmt: str) -> list[dict]:
    records = []
    for item in read_records(path, fmt):
        if item.error:
            raise SystemExit(f"{path}:{item.line}: {item.error}")
        records.append(item.record)
    return records


def pipeline(task: str, compute_type: str, threads: int):
    os.environ[COMPUTE_TYPE_VARIABLE] = compute_type
    return nlpengine.pipeline(task, threads=threads)


def ner_tags(compute_type: str, records: list[dict], threads: int) -> list[list[str]]:
    from nlpengine_ner import entities_to_tags

    entities = pipeline("ner", compute_type, threads).run_inputs([r["text"] for r in records])
    return [entities_to_tags(e, r["token_spans"]) for e, r in zip(entities, records, strict=True)]


def sentiment_labels(compute_type: str, records: list[dict], threads: int) -> list[str]:
    results = pipeline("classification", compute_type, threads).run_inputs(
        [r["text"] for r in records]
    )
    return [result[0]["label"] for result in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compute-types", default="int8,bf16,int8-mixed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    from nlpengine_ner import ner_metrics

    fast = [t for t in args.compute_types.split(",") if t and t != "float32"]
    ner_data = DATA / "ner" / "silver" / "test.conll"
    sentiment_data = DATA / "classification" / "sentiment" / "test.jsonl"
    ner_records = read(ner_data, "conll")
    sentiment_records = read(sentiment_data, "jsonl")
    gold_tags = [r["tags"] for r in ner_records]
    gold_labels = [r["label"] for r in sentiment_records]

    tags = {t: ner_tags(t, ner_records, args.threads) for t in ["float32", *fast]}
    labels = {t: sentiment_labels(t, sentiment_records, args.threads) for t in ["float32", *fast]}

    def accuracy(pred: list[str], gold: list[str]) -> float:
        return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)

    rows = {}
    for t in ["float32", *fast]:
        rows[t] = {
            "ner_f1_vs_float32": ner_metrics(tags["float32"], tags[t])["f1"],
            "ner_f1_vs_labels": ner_metrics(gold_tags, tags[t])["f1"],
            "sentiment_agreement_with_float32": accuracy(labels[t], labels["float32"]),
            "sentiment_accuracy": accuracy(labels[t], gold_labels),
        }
    report = {
        "data": {"ner": str(ner_data), "sentiment": str(sentiment_data)},
        "sentences": {"ner": len(ner_records), "sentiment": len(sentiment_records)},
        "threads": args.threads,
        "versions": {"nlpengine": nlpengine.__version__},
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| compute type | NER F1 vs float32 | NER F1 vs silver | sentiment agreement "
          "| sentiment accuracy |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for t, r in rows.items():
        cells = [r["ner_f1_vs_float32"], r["ner_f1_vs_labels"],
                 r["sentiment_agreement_with_float32"], r["sentiment_accuracy"]]  # fmt: skip
        print(f"| {t} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
