"""`engine train --task summarization` end to end on tiny BART and T5 bases: the loss falls,
each epoch is scored with ROUGE through the runtime's generate, and what is written loads
in transformers' AutoModelForSeq2SeqLM (no missing or unexpected keys) and in the runtime
with the same logits."""

from __future__ import annotations

import json
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from seq2seq_fixtures import save_tiny_summarizer, summary_records
from train_fixtures import engine

# One thread: the tiny model's steps take milliseconds, and a second thread only contends.
FAST = ["--batch-size", "8", "--learning-rate", "5e-3", "--warmup-ratio", "0.1", "--threads", "1"]


@pytest.fixture(scope="module")
def summary_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("summary-data")
    (d / "train.jsonl").write_text(summary_records(192, seed=11), "utf-8")
    (d / "dev.jsonl").write_text(summary_records(12, seed=12), "utf-8")
    return d / "train.jsonl", d / "dev.jsonl"


def _train(base: Path, out: Path, data, *extra, check: bool = True):
    train, dev = data
    return engine(
        "train",
        "--task",
        "summarization",
        "--base",
        base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        out,
        *FAST,
        *extra,
        check=check,
    )


def _same_logits_everywhere(out: Path) -> None:
    from nlpengine.torch import load_seq2seq
    from transformers import AutoModelForSeq2SeqLM

    reference, info = AutoModelForSeq2SeqLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    reference.eval()
    pad = reference.config.pad_token_id
    start = reference.config.decoder_start_token_id
    ids = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, pad, pad, pad]])
    mask = (np.arange(6)[None] < np.array([[6], [3]])).astype(np.int64)
    decoder = np.array([[start, 5, 6, 7], [start, 8, 9, 10]])
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            decoder_input_ids=torch.tensor(decoder),
        ).logits.numpy()
        ours = load_seq2seq(out)(torch.tensor(ids), torch.tensor(mask), torch.tensor(decoder))
    assert np.abs(ours.numpy() - expected).max() < 1e-4
    runtime = nlpengine.load(out, threads=1)
    assert np.abs(runtime.forward(ids, mask, decoder) - expected).max() < 1e-4


def test_bart_training_learns_and_the_output_runs_everywhere(tmp_path, summary_data):
    base = save_tiny_summarizer(tmp_path / "base", "bart", seed=1, dropout=0.1)
    out = tmp_path / "bart-out"
    _train(base, out, summary_data, "--epochs", "5")
    log = json.loads((out / "training_log.json").read_text())
    history = log["history"]
    assert len(history) == 5
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(0.0 <= h["rougeLsum"] <= 1.0 for h in history)
    assert {"rouge1", "rouge2", "rougeL"} <= set(history[0]["metrics"])
    best = max(h["rougeLsum"] for h in history)
    # The summary is the article's first sentence: the template is learned within a few
    # epochs, and the runtime's generate turns that into ROUGE (about 0.5 at 5 epochs).
    assert best > 0.3, history
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["architectures"] == [
        "BartForConditionalGeneration"
    ]
    _same_logits_everywhere(out)

    # The kept model is the best epoch's, as engine eval scores it.
    metrics = json.loads(
        engine(
            "eval", "--task", "summarization", "--model", out, "--data", summary_data[1], "--json"
        ).stdout
    )
    assert metrics["rougeLsum"] == pytest.approx(best, abs=1e-9)


def test_t5_training_with_untied_head(tmp_path, summary_data):
    """A v1.1-style T5 (gated-gelu, its own LM head, no output rescaling) trains and
    keeps that layout."""
    base = save_tiny_summarizer(tmp_path / "base", "t5", seed=2)
    from nlpengine.torch import load_seq2seq

    model = load_seq2seq(base)
    # Give the base an LM head of its own, saved as transformers 4.x wrote v1.1 configs.
    config = json.loads((base / "config.json").read_text())
    config.update(tie_word_embeddings=False)
    config.pop("scale_decoder_outputs", None)
    (base / "config.json").write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(base / "model.safetensors"))
    tensors["lm_head.weight"] = torch.randn_like(model.shared.weight) * 0.05
    save_file(tensors, str(base / "model.safetensors"), metadata={"format": "pt"})

    out = tmp_path / "t5-out"
    _train(base, out, summary_data, "--epochs", "1")
    saved = json.loads((out / "config.json").read_text())
    assert saved["tie_word_embeddings"] is False and saved["scale_decoder_outputs"] is False
    assert load_seq2seq(out).lm_head_tied is False
    _same_logits_everywhere(out)


def test_bad_input_and_lora_are_clear_errors(tmp_path, summary_data):
    base = save_tiny_summarizer(tmp_path / "base", "bart", seed=1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "summary": "b"}\n{"text": "c", "summary": 3}\n')
    proc = _train(base, tmp_path / "o1", (bad, summary_data[1]), check=False)
    assert proc.returncode != 0
    assert f"{bad}:2: field 'summary' must be a string, got int" in proc.stderr
    proc = _train(base, tmp_path / "o2", summary_data, "--lora", "r=4", check=False)
    assert proc.returncode != 0
    assert "does not support --lora" in proc.stderr
