"""`engine train` end to end: learning, repeatability, output loading in the runtime and in
transformers, config files, resume after a kill, and torchrun (DDP) against one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from train_fixtures import (  # noqa: F401
    ENGINE,
    engine,
    ner_data,
    save_tiny_base,
    sentiment_data,
    tiny_base,
)

FAST = ["--batch-size", "8", "--learning-rate", "3e-3", "--warmup-ratio", "0.1", "--threads", "2"]
CLASSIFY_FAST = ["--batch-size", "16", "--learning-rate", "2e-3", "--threads", "2"]


def log_of(out: Path) -> dict:
    return json.loads((out / "training_log.json").read_text())


def test_ner_training_learns_and_the_output_runs_everywhere(tmp_path, tiny_base, ner_data):  # noqa: F811
    train, dev = ner_data
    out = tmp_path / "ner"
    engine(
        "train",
        "--task",
        "ner",
        "--base",
        tiny_base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        out,
        "--epochs",
        "4",
        *FAST,
    )
    history = log_of(out)["history"]
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = max(h["f1"] for h in history)
    assert best > 0.5, history  # the template entities are easy to learn

    # The runtime and transformers load what was written and agree.
    from transformers import AutoModelForTokenClassification

    reference, info = AutoModelForTokenClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    runtime = nlpengine.load(out)
    assert runtime.head == "token_classification"
    assert set(runtime.id2label.values()) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}
    ids = np.array([[101, 7592, 2000, 11929, 102, 0], [101, 2198, 3712, 1012, 4649, 102]])
    mask = (ids != 0).astype(np.int64)
    with torch.no_grad():
        expected = reference.eval()(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)
        ).logits.numpy()
    got = runtime.encode(ids, mask).logits
    assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4

    # The kept model is the best epoch's, scored by the task's own metrics.
    metrics = json.loads(
        engine("eval", "--task", "ner", "--model", out, "--data", dev, "--json").stdout
    )
    assert metrics["f1"] == pytest.approx(best, abs=1e-9)


def test_training_is_repeatable_with_a_seed(tmp_path, tiny_base, sentiment_data):  # noqa: F811
    train, dev = sentiment_data
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        engine(
            "train",
            "--task",
            "classification",
            "--base",
            tiny_base,
            "--train",
            train,
            "--dev",
            dev,
            "--out",
            out,
            "--epochs",
            "2",
            *CLASSIFY_FAST,
        )
        outs.append(load_file(out / "model.safetensors"))
    assert outs[0].keys() == outs[1].keys()
    for key in outs[0]:
        np.testing.assert_array_equal(outs[0][key], outs[1][key], err_msg=key)
    history = log_of(tmp_path / "a")["history"]
    assert history[-1]["accuracy"] >= 0.9, history


def test_config_file_and_command_line(tmp_path, tiny_base, sentiment_data):  # noqa: F811
    train, dev = sentiment_data
    config = tmp_path / "train.toml"
    config.write_text("epochs = 1\nbatch-size = 4\nlearning-rate = 1e-3\nseed = 7\n", "utf-8")
    out = tmp_path / "cfg"
    engine(
        "train",
        "--task",
        "classification",
        "--base",
        tiny_base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        out,
        "--config",
        config,
        "--batch-size",
        "8",
    )
    settings = log_of(out)["config"]
    assert settings["epochs"] == 1 and settings["seed"] == 7 and settings["learning_rate"] == 1e-3
    assert settings["batch_size"] == 8  # the command line wins
    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n", "utf-8")
    proc = engine(
        "train",
        "--task",
        "classification",
        "--base",
        tiny_base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        tmp_path / "x",
        "--config",
        bad,
        check=False,
    )
    assert proc.returncode != 0 and "epochz" in proc.stderr


def test_bad_training_data_names_file_and_line(tmp_path, tiny_base, sentiment_data):  # noqa: F811
    _, dev = sentiment_data
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "fine", "label": "positive"}\n{"text": "no label"}\n', "utf-8")
    proc = engine(
        "train",
        "--task",
        "classification",
        "--base",
        tiny_base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        tmp_path / "x",
        check=False,
    )
    assert proc.returncode != 0 and f"{train}:2" in proc.stderr


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, tiny_base, ner_data):  # noqa: F811
    train, dev = ner_data
    many = tmp_path / "many.conll"
    many.write_text(train.read_text("utf-8") * 4, "utf-8")
    args = [
        "train",
        "--task",
        "ner",
        "--base",
        str(tiny_base),
        "--train",
        str(many),
        "--dev",
        str(dev),
        "--epochs",
        "3",
        *FAST,
        # One thread: with two, the GEMM library may split sums differently from run to
        # run on a busy machine, and the comparison below is bit for bit.
        "--threads",
        "1",
    ]
    full = tmp_path / "full"
    engine(*args, "--out", full)

    out = tmp_path / "resumed"
    state = out / "checkpoint" / "state.pt"
    child = subprocess.Popen(
        [str(ENGINE), *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None and not state.exists():
        time.sleep(0.002)
    assert child.poll() is None, "training finished before it could be interrupted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(torch.load(state, weights_only=False)["history"]) == 1

    proc = engine(*args, "--out", out, "--resume")
    assert "resuming after epoch 1" in proc.stderr
    a, b = load_file(full / "model.safetensors"), load_file(out / "model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert log_of(out)["history"] == log_of(full)["history"]


def test_torchrun_two_processes_match_one_with_the_same_global_batch(tmp_path, sentiment_data):  # noqa: F811
    train, dev = sentiment_data
    base = save_tiny_base(tmp_path / "base", seed=5, dropout=0.0)
    common = [
        "train",
        "--task",
        "classification",
        "--base",
        str(base),
        "--train",
        str(train),
        "--dev",
        str(dev),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--learning-rate",
        "2e-3",
        "--threads",
        "1",
    ]
    engine(*common, "--out", tmp_path / "one")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "--master-port",
            "29531",
            str(ENGINE),
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    one, two = (
        load_file(tmp_path / "one" / "model.safetensors"),
        load_file(tmp_path / "two" / "model.safetensors"),
    )
    start = load_file(base / "model.safetensors")
    moved = max(float(np.abs(one["bert." + k] - start[k]).max()) for k in start)
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    print(f"max |single - DDP| weight difference: {worst:.2e} (training moved weights {moved:.2e})")
    # Gradients summed in another order differ in the last bits; Adam's normalised steps
    # carry that into the weights, far below what training itself changes.
    assert moved > 1e-2
    assert worst < 1e-3


def test_lora_training_writes_a_peft_adapter_the_runtime_and_peft_load(
    tmp_path,
    tiny_base,  # noqa: F811
    ner_data,  # noqa: F811
):
    train, dev = ner_data
    out = tmp_path / "adapter"
    engine(
        "train",
        "--task",
        "ner",
        "--base",
        tiny_base,
        "--train",
        train,
        "--dev",
        dev,
        "--out",
        out,
        "--epochs",
        "2",
        "--lora",
        "r=4,alpha=8,targets=query,value",
        *FAST,
    )
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA" and adapter_config["r"] == 4
    assert sorted(adapter_config["target_modules"]) == ["query", "value"]
    assert not (out / "model.safetensors").exists()  # only the adapter and the head

    runtime = nlpengine.load(out)  # finds the base through the adapter's pointer
    assert runtime.head == "token_classification"
    ids = np.array([[101, 7592, 2000, 11929, 102, 0], [101, 2198, 3712, 1012, 4649, 102]])
    mask = (ids != 0).astype(np.int64)
    got = runtime.encode(ids, mask).logits

    import peft
    from transformers import AutoModelForTokenClassification

    labels = json.loads((out / "config.json").read_text())["id2label"]
    base = AutoModelForTokenClassification.from_pretrained(
        tiny_base, num_labels=len(labels), id2label={int(k): v for k, v in labels.items()}
    )
    reference = peft.PeftModel.from_pretrained(base, out).merge_and_unload().eval()
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)
        ).logits.numpy()
    assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4
    metrics = json.loads(
        engine("eval", "--task", "ner", "--model", out, "--data", dev, "--json").stdout
    )
    assert metrics["f1"] == pytest.approx(max(h["f1"] for h in log_of(out)["history"]))
