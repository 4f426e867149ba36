#!/usr/bin/env python3
"""Prints the README's "Built-in models" figures from the shipped models' metrics.json
and training_log.json (written by scripts/train_default_models.py).

    python scripts/readme_models.py      # paste the output under "## Built-in models"
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NER = ROOT / "plugins/ner/nlpengine_ner/default_model"
SENTIMENT = ROOT / "plugins/classification/nlpengine_classification/default_model"


def recipe(model_dir: Path) -> str:
    log = json.loads((model_dir / "training_log.json").read_text())
    c = log["config"]
    lora = c["lora"]
    trained = len(log["history"])
    if trained == c["epochs"]:
        epochs = f"{trained} epoch" + ("s" if trained > 1 else "")
    else:
        epochs = f"{trained} epochs of a {c['epochs']}-epoch schedule"
    best = log.get("best_epoch") or {"epoch": trained}
    best = best["epoch"] if isinstance(best, dict) else best
    types = c.get("token_types", "segments")
    return (
        f"{epochs}, best epoch {best}, batch {c['batch_size']}, lr {c['learning_rate']}, "
        f"warmup {c['warmup_ratio']}, LoRA r={lora['r']} alpha={lora['alpha']:g} on "
        f"{', '.join(lora['targets'])}"
        + (f", {types} token types" if types != "segments" else "")
        + f", seed {c['seed']}"
    )


def main() -> None:
    ner = json.loads((NER / "metrics.json").read_text())
    print(f"**NER** ({recipe(NER)}). `engine eval --task ner --data "
          "../shared/data/ner/silver/test.conll`:")  # fmt: skip
    print(
        f"micro precision **{ner['precision']:.3f}**, recall **{ner['recall']:.3f}**, "
        f"F1 **{ner['f1']:.3f}** over {ner['support']} entities in {ner['sentences']} sentences."
    )
    print()
    print("| type | precision | recall | F1 | entities |")
    print("|---|---:|---:|---:|---:|")
    for name, m in sorted(ner["per_type"].items(), key=lambda kv: -kv[1]["support"]):
        print(
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
            f"| {m['support']} |"
        )
    print()
    cls = json.loads((SENTIMENT / "metrics.json").read_text())
    per = ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in cls["per_class"].items())
    print(
        f"**Sentiment** ({recipe(SENTIMENT)}). `engine eval --task classification --data "
        f"../shared/data/classification/sentiment/test.jsonl`: accuracy **{cls['accuracy']:.3f}**, "
        f"macro-F1 **{cls['macro_f1']:.3f}** on {cls['num_examples']} sentences ({per})."
    )


if __name__ == "__main__":
    main()
