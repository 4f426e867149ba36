"""`engine bench` end to end: it times the job `engine run` does, per compute type."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path

from cli_fixtures import engine, ner_model_dir  # noqa: F401

TEXTS = [
    "Grace Hopper moved to Arlington to work for the Navy.",
    "The museum in Porto opens at nine.",
    "Zoë met Kofi at the café in Zürich — 🚀 and 東京 too!",
    "Ada Lovelace wrote notes on the Analytical Engine in 1843.",
    "Marie Curie and Pierre Curie worked in Paris.",
    "A quiet afternoon by the river Thames in London.",
    "Nelson Mandela spoke in Johannesburg on Tuesday.",
    "",
    "Tim Berners-Lee proposed the web at CERN near Geneva.",
]


def _write_docs(path: Path) -> tuple[Path, list[int]]:
    """The docs as JSONL with two bad lines among them: one not JSON, one without text.
    Returns the path and the bad lines' numbers."""
    lines = [
        json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(TEXTS)
    ]
    lines.insert(3, "{not json")
    lines.insert(6, json.dumps({"id": "no-text"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [4, 7]


def _without_floats(value):
    if isinstance(value, float):
        return None
    if isinstance(value, dict):
        return {k: _without_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_floats(v) for v in value]
    return value


def test_bench_times_what_engine_run_runs_for_each_compute_type(tmp_path, ner_model_dir):  # noqa: F811
    src, bad_lines = _write_docs(tmp_path / "docs.jsonl")
    outputs = {}
    for compute_type in ("float32", "int8"):
        out = tmp_path / f"{compute_type}.jsonl"
        engine("run", "--task", "ner", "--model", ner_model_dir, "--input", src,
               "--output", out, "--batch-size", "4", "--on-error", "skip",
               "--compute-type", compute_type)  # fmt: skip
        outputs[compute_type] = out
    report_path = tmp_path / "speed.json"
    proc = engine("bench", "--task", "ner", "--model", ner_model_dir, "--input", src,
                  "--batch-size", "4", "--compute-type", "float32,int8", "--rounds", "2",
                  "--passes", "2", "--min-seconds", "0", "--output", report_path)  # fmt: skip

    # The bad records are named by file and line and left out; the rest are all timed.
    for line in bad_lines:
        assert f"{src}:{line}:" in proc.stderr
    report = json.loads(report_path.read_text("utf-8"))
    assert report["complete"] is True and report["records"] == len(TEXTS)
    assert report["words"] == sum(len(t.split()) for t in TEXTS)
    assert [s["line"] for s in report["skipped"]] == bad_lines
    assert list(report["runs"]) == ["float32", "int8"]

    for compute_type, runs in report["runs"].items():
        assert len(runs) == 2
        # Every run produced exactly the output file `engine run` writes for its type.
        expected_sha = hashlib.sha256(outputs[compute_type].read_bytes()).hexdigest()
        for run in runs:
            assert run["compute_type"] == compute_type
            assert run["records"] == len(TEXTS)
            assert run["output_sha256"] == [expected_sha, expected_sha]  # one per pass
            assert len(run["pass_s"]) == 2 and all(t > 0 for t in run["pass_s"])
            assert len(run["runtime_share"]) == 2 and all(0 < x < 1 for x in run["runtime_share"])
            assert 0 < run["load_s"] < run["first_result_s"]
            assert run["peak_rss_mb"] > 0
        assert (runs[0]["arithmetic"] == "float32") == (compute_type == "float32")

    summary = report["summary"]
    for compute_type, entry in summary.items():
        rates = [len(TEXTS) / statistics.median(r["pass_s"]) for r in report["runs"][compute_type]]
        assert entry["records_per_s"]["min"] == min(rates)
        assert entry["records_per_s"]["max"] == max(rates)
        assert entry["outputs_repeat"] is True
    assert summary["float32"]["speed_vs_reference"] == 1.0
    assert summary["float32"]["same_answers_as_reference"] == 1.0

    # The answers column: records whose output, scores aside, equals float32's.
    answers = {
        t: [_without_floats(json.loads(line)) for line in p.read_text("utf-8").splitlines()]
        for t, p in outputs.items()
    }
    same = sum(a == b for a, b in zip(answers["float32"], answers["int8"], strict=True))
    assert summary["int8"]["same_answers_as_reference"] == same / len(TEXTS)

    # The table on stdout, status on stderr.
    table = proc.stdout.splitlines()
    assert table[0].startswith("| compute type | records/s")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["float32", "int8"]
    assert "round 2/2 int8" in proc.stderr


def test_bench_errors_name_what_is_wrong(tmp_path, ner_model_dir):  # noqa: F811
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": 1}\n', encoding="utf-8")
    proc = engine("bench", "--task", "ner", "--model", ner_model_dir, "--input", empty,
                  check=False)  # fmt: skip
    assert proc.returncode == 1
    assert f"{empty}: no record the task 'ner' can run" in proc.stderr
    assert f"{empty}:1:" in proc.stderr

    src, _ = _write_docs(tmp_path / "docs.jsonl")
    proc = engine("bench", "--task", "ner", "--model", ner_model_dir, "--input", src,
                  "--compute-type", "float32,fp8", check=False)  # fmt: skip
    assert proc.returncode == 2 and "'fp8' is not one of" in proc.stderr

    broken = tmp_path / "broken-model"
    broken.mkdir()
    for f in Path(ner_model_dir).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:200])
    partial = tmp_path / "partial.json"
    proc = engine("bench", "--task", "ner", "--model", broken, "--input", src,
                  "--compute-type", "int8", "--output", partial, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "the int8 run failed" in proc.stderr and "model.safetensors" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(partial.read_text("utf-8"))
    assert "model.safetensors" in report["error"] and report["runs"] == {"int8": []}
    assert report["complete"] is False


def test_bench_takes_task_options_as_engine_run_does(tmp_path):
    """Task options reach every run, paths included (the recommendation task's --items):
    the bench's output digest is that of `engine run`'s file with the same options."""
    items = tmp_path / "items.jsonl"
    colours = ["red", "blue", "green", "grey", "yellow"]
    things = ["lamp", "chair", "kettle", "bicycle", "notebook", "umbrella"]
    items.write_text(
        "".join(
            json.dumps({"item_id": f"{c}-{t}", "text": f"a {c} {t}"}) + "\n"
            for c in colours
            for t in things
        ),
        encoding="utf-8",
    )
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"id": i, "history": [f"{colours[i % 5]}-{things[i % 6]}"]}) + "\n"
            for i in range(7)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "ranked.jsonl"
    options = ["--items", items, "--top-k", "3"]
    engine("run", "--task", "recommendation", "--input", requests, "--output", out, *options)
    report_path = tmp_path / "speed.json"
    engine("bench", "--task", "recommendation", "--input", requests, "--rounds", "1",
           "--min-seconds", "0.3", "--output", report_path, *options)  # fmt: skip
    report = json.loads(report_path.read_text("utf-8"))
    (run,) = report["runs"]["float32"]
    # 7 requests take milliseconds: passes are added until they take 0.3 s in all.
    assert sum(run["pass_s"]) >= 0.3
    assert all(sum(run["pass_s"][:k]) < 0.3 for k in range(1, len(run["pass_s"])))
    expected_sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert run["output_sha256"] == [expected_sha] * len(run["pass_s"])
    assert report["settings"]["task_options"]["items"] == str(items)
    assert report["settings"]["task_options"]["top_k"] == 3


def test_bench_of_a_task_without_a_default_model_asks_for_one(tmp_path):
    src = tmp_path / "questions.jsonl"
    src.write_text(json.dumps({"question": "Who?", "context": "Ada."}) + "\n", encoding="utf-8")
    proc = engine("bench", "--task", "qa", "--input", src, check=False)
    assert proc.returncode == 2
    assert "task 'qa' has no default model: give --model DIR" in proc.stderr


def test_the_runtime_clock_adds_every_runtime_call(ner_model_dir):  # noqa: F811
    import numpy as np
    from nlpengine import load
    from nlpengine.runtime_clock import runtime_call, runtime_seconds

    model = load(ner_model_dir)
    ids = np.array([[101, 7592, 2088, 102]])
    before = runtime_seconds()
    model.encode(ids)
    after_encode = runtime_seconds()
    assert after_encode > before
    with runtime_call():
        time.sleep(0.05)
    assert runtime_seconds() - after_encode >= 0.05
