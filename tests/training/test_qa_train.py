"""``engine train --task qa``: a tiny BERT fine-tuned on a synthetic SQuAD 2.0 file written
here; the output loads in transformers' AutoModelForQuestionAnswering and in the runtime
with equal logits, and ``engine eval`` gives the kept epoch's score."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from train_fixtures import engine, save_tiny_base

PEOPLE = ["Alice Moreau", "Kofi Mensah", "Li Wei", "Sara Lind", "Tom Baker", "Ana Silva"]
CITIES = ["Lisbon", "Nairobi", "Oslo", "Quito", "Hanoi", "Dublin"]
FILLER = [
    "The weather was mild that spring .",
    "Trains ran late on most days .",
    "A new library opened near the river .",
    "Prices at the market went up again .",
]


def squad_data(count: int, seed: int) -> dict:
    """Paragraphs naming who moved where, with a who-question, a where-question and (every
    third paragraph) an unanswerable question; filler sentences make some contexts longer
    than one window."""
    rng = random.Random(seed)
    paragraphs = []
    for n in range(count):
        person, city = rng.choice(PEOPLE), rng.choice(CITIES)
        before = " ".join(rng.sample(FILLER, rng.randint(0, 3)))
        fact = f"{person} moved to {city} last year ."
        context = f"{before} {fact} {rng.choice(FILLER)}".strip()
        qas = [
            {
                "id": f"{seed}-{n}-who",
                "question": f"Who moved to {city} ?",
                "answers": [{"text": person, "answer_start": context.index(person)}],
            },
            {
                "id": f"{seed}-{n}-where",
                "question": f"Where did {person} move ?",
                "answers": [
                    {"text": city, "answer_start": context.index(fact) + len(f"{person} moved to ")}
                ],
            },
        ]
        if n % 3 == 0:
            qas.append(
                {"id": f"{seed}-{n}-none", "question": "Who sold the bakery ?", "answers": [],
                 "is_impossible": True}
            )  # fmt: skip
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "v2.0", "data": [{"title": "moves", "paragraphs": paragraphs}]}


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("qa-data")
    (d / "train.json").write_text(json.dumps(squad_data(150, seed=1)), "utf-8")
    (d / "dev.json").write_text(json.dumps(squad_data(20, seed=2)), "utf-8")
    return d / "train.json", d / "dev.json"


def test_qa_training_learns_and_the_output_runs_everywhere(tmp_path, qa_data):
    train, dev = qa_data
    base = save_tiny_base(tmp_path / "base", dropout=0.0)
    out = tmp_path / "qa"
    engine(
        "train", "--task", "qa", "--base", base, "--train", train, "--dev", dev, "--out", out,
        "--epochs", "4", "--max-length", "48", "--batch-size", "16", "--learning-rate", "3e-3",
        "--warmup-ratio", "0.1", "--threads", "2",
    )  # fmt: skip
    log = json.loads((out / "training_log.json").read_text())
    history = log["history"]
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = max(h["f1"] for h in history)
    print("dev F1 per epoch:", [round(h["f1"], 1) for h in history])
    assert best > 40, history  # percent; the template answers are easy to find

    from transformers import AutoModelForQuestionAnswering

    reference, info = AutoModelForQuestionAnswering.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    runtime = nlpengine.load(out)
    assert runtime.head == "question_answering"
    ids = np.array(
        [[101, 2040, 2333, 2000, 102, 5046, 2333, 102, 0], [101, 2073] + [1996] * 6 + [102]]
    )
    mask = (ids != 0).astype(np.int64)
    types = np.zeros_like(ids)
    types[0, 5:8] = 1
    with torch.no_grad():
        ref = reference.eval()(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            token_type_ids=torch.tensor(types),
        )
    expected = np.stack([ref.start_logits.numpy(), ref.end_logits.numpy()], axis=-1)
    got = runtime.encode(ids, mask, types).logits
    assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4

    # The kept model is the best epoch's, scored by the task's own metrics in the runtime.
    metrics = json.loads(
        engine("eval", "--task", "qa", "--model", out, "--data", dev, "--json").stdout
    )
    assert metrics["f1"] == pytest.approx(best, abs=1e-9)
    assert metrics["NoAns_total"] > 0 and metrics["HasAns_total"] > 0
