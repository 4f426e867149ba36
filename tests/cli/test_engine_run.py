"""`engine run` and `engine eval` end to end, through the real console script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nlpengine
import pytest
from cli_fixtures import engine, ner_model_dir, sentiment_model_dir  # noqa: F401

TEXTS = [
    "Grace Hopper moved to Arlington to work for the Navy.",
    "The museum in Porto opens at nine.",
    "",
    "Zoë met Kofi at the café in Zürich — 🚀 and 東京 too!",
    "Control\tcharacters\u0007 and\u200b zero-width spaces.",
    "Ada Lovelace wrote notes on the Analytical Engine in 1843.",
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_ner_run_writes_one_record_per_input_in_order(tmp_path, ner_model_dir):  # noqa: F811
    src = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)]
    )
    out = tmp_path / "ents.jsonl"
    proc = engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--batch-size",
        "2",
    )
    records = read_jsonl(out)
    assert [r["id"] for r in records] == [f"d{i}" for i in range(len(TEXTS))]
    expected = nlpengine.pipeline("ner", model=ner_model_dir)(TEXTS)
    for record, text, entities in zip(records, TEXTS, expected, strict=True):
        # Batches of 2 here and of the default size in the pipeline: the GEMM library may
        # pick kernels by row count, so scores agree to float32 rounding, not bit for bit.
        expected_entities = json.loads(json.dumps(entities))
        assert [{**e, "score": pytest.approx(e["score"], abs=1e-5)} for e in expected_entities] == (
            record["entities"]
        )
        for e in record["entities"]:
            assert set(e) == {"label", "text", "start", "end", "score"}
            assert text[e["start"] : e["end"]] == e["text"]
    assert any(r["entities"] for r in records), "the tiny model should find some entities"
    assert records[2]["entities"] == []  # the empty string
    assert "records" in proc.stderr and not proc.stdout  # status on stderr only


def test_task_options_reach_the_pipeline(tmp_path, ner_model_dir):  # noqa: F811
    src = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in TEXTS])
    out = tmp_path / "tokens.jsonl"
    engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--aggregation-strategy",
        "none",
        "--ignore-labels",
        "O",
        "--ignore-labels",
        "B-PER",
    )
    expected = nlpengine.pipeline(
        "ner", model=ner_model_dir, aggregation_strategy="none", ignore_labels=("O", "B-PER")
    )(TEXTS)
    assert [r["entities"] for r in read_jsonl(out)] == json.loads(json.dumps(expected))
    assert all(e["label"] != "B-PER" for r in read_jsonl(out) for e in r["entities"])
    bad = engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--no-such-option",
        "1",
        check=False,
    )
    assert bad.returncode != 0 and "--aggregation-strategy" in bad.stderr


@pytest.mark.parametrize("fmt", ["text", "csv", "tsv", "conll"])
def test_input_formats_are_guessed_from_the_extension(tmp_path, ner_model_dir, fmt):  # noqa: F811
    texts = ["Grace Hopper visited Paris .", "Nothing here ."]
    if fmt == "text":
        src = tmp_path / "in.txt"
        src.write_text("\n".join(texts) + "\n", "utf-8")
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        src = tmp_path / f"in.{fmt}"
        src.write_text(f"id{sep}text\n" + "".join(f"r{i}{sep}{t}\n" for i, t in enumerate(texts)))
    else:
        src = tmp_path / "in.conll"
        src.write_text("".join("\n".join(f"{w} O" for w in t.split()) + "\n\n" for t in texts))
    out = tmp_path / "out.jsonl"
    engine("run", "--task", "ner", "--model", ner_model_dir, "--input", src, "--output", out)
    records = read_jsonl(out)
    assert len(records) == 2
    expected = nlpengine.pipeline("ner", model=ner_model_dir)(texts)
    assert [r["entities"] for r in records] == json.loads(json.dumps(expected))
    if fmt in ("csv", "tsv"):
        assert [r["id"] for r in records] == ["r0", "r1"]


def test_bad_records_are_skipped_to_rejects_with_line_and_reason(tmp_path, ner_model_dir):  # noqa: F811
    src = tmp_path / "docs.jsonl"
    src.write_text(
        '{"id": 1, "text": "Grace Hopper lived in New York."}\n'
        '{"id": 2, "text": "broken\n'
        '{"id": 3, "body": "no text field"}\n'
        '{"id": 4, "text": 17}\n'
        '["not", "an", "object"]\n'
        '{"id": 6, "text": "Last one, in Lisbon."}\n',
        "utf-8",
    )
    out = tmp_path / "out.jsonl"
    engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--on-error",
        "skip",
    )
    assert [r["id"] for r in read_jsonl(out)] == [1, 6]
    rejects = read_jsonl(Path(str(out) + ".rejects.jsonl"))
    assert [r["line"] for r in rejects] == [2, 3, 4, 5]
    assert "JSON" in rejects[0]["error"]
    assert "text" in rejects[1]["error"] and rejects[1]["record"] == {
        "id": 3,
        "body": "no text field",
    }
    assert "string" in rejects[2]["error"]


def test_on_error_fail_names_file_and_line_and_keeps_what_came_before(tmp_path, ner_model_dir):  # noqa: F811
    src = tmp_path / "docs.jsonl"
    src.write_text(
        '{"text": "Grace Hopper."}\n{"text": "Alan Turing."}\n{"text": oops}\n'
        '{"text": "never reached"}\n',
        "utf-8",
    )
    out = tmp_path / "out.jsonl"
    proc = engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        check=False,
    )
    assert proc.returncode != 0
    assert f"{src}:3" in proc.stderr and "JSON" in proc.stderr
    assert len(read_jsonl(out)) == 2  # the records before the bad line are written


def test_lines_that_are_not_unicode_are_bad_records_not_the_end_of_the_job(
    tmp_path,
    ner_model_dir,  # noqa: F811
):
    """A line with bytes that are not UTF-8 and a record whose JSON escapes an unpaired
    surrogate (the tokenizer refuses it) are rejected with their lines; the job goes on
    (it stopped at the first such byte, before writing anything)."""
    src = tmp_path / "docs.jsonl"
    src.write_bytes(
        b'{"id": 1, "text": "Grace Hopper lived in New York."}\n'
        b'{"id": 2, "text": "Zoe in M\xfcnchen"}\n'
        b'{"id": 3, "text": "\\udc00 Alan Turing"}\n'
        b'{"id": 4, "text": "Last one, in Lisbon."}\n'
    )
    out = tmp_path / "out.jsonl"
    args = ["run", "--task", "ner", "--model", ner_model_dir, "--input", src, "--output", out]
    engine(*args, "--on-error", "skip")
    assert [r["id"] for r in read_jsonl(out)] == [1, 4]
    rejects = read_jsonl(Path(str(out) + ".rejects.jsonl"))
    assert [r["line"] for r in rejects] == [2, 3]
    assert "UTF-8" in rejects[0]["error"] and "surrogate" in rejects[1]["error"]

    proc = engine(*args, check=False)
    assert proc.returncode != 0
    assert f"{src}:2" in proc.stderr and "UTF-8" in proc.stderr
    assert [r["id"] for r in read_jsonl(out)] == [1]


def test_bad_conll_line_is_reported(tmp_path, ner_model_dir):  # noqa: F811
    src = tmp_path / "in.conll"
    src.write_text("Grace B-PER\nHopper I-PER\n\nlonelytoken\n\nParis B-LOC\n", "utf-8")
    out = tmp_path / "out.jsonl"
    proc = engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        check=False,
    )
    assert proc.returncode != 0 and f"{src}:4" in proc.stderr and "TOKEN TAG" in proc.stderr
    engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--on-error",
        "skip",
    )
    assert len(read_jsonl(out)) == 2
    assert read_jsonl(Path(str(out) + ".rejects.jsonl"))[0]["line"] == 4


def test_very_long_text_is_processed_whole(tmp_path, ner_model_dir):  # noqa: F811
    sentence = "Grace Hopper worked with Howard Aiken in Cambridge on the Mark I computer. "
    text = (sentence * (100_000 // len(sentence) + 1))[:100_000]
    src = write_jsonl(tmp_path / "long.jsonl", [{"text": text}])
    out = tmp_path / "out.jsonl"
    engine("run", "--task", "ner", "--model", ner_model_dir, "--input", src, "--output", out)
    (record,) = read_jsonl(out)
    ends = [e["end"] for e in record["entities"]]
    assert ends and max(ends) > 90_000, "entities must be found to the end, not truncated"
    for e in record["entities"]:
        assert text[e["start"] : e["end"]] == e["text"]


def test_resume_after_a_killed_run_gives_the_same_output(tmp_path, ner_model_dir):  # noqa: F811
    words = ["Grace", "Hopper", "met", "Alan", "in", "Paris", "and", "Lisbon", "on", "Monday"]
    records = [
        {"id": i, "text": " ".join(words[(i + k) % len(words)] for k in range(4 + i % 9))}
        for i in range(4000)
    ]
    src = write_jsonl(tmp_path / "many.jsonl", records)
    full = tmp_path / "full.jsonl"
    engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        full,
        "--batch-size",
        "4",
        "--threads",
        "1",
    )

    out = tmp_path / "resumed.jsonl"
    progress = Path(str(out) + ".progress.json")
    exe = Path(sys.executable).with_name("engine")
    child = subprocess.Popen(
        [
            str(exe),
            "run",
            "--task",
            "ner",
            "--model",
            str(ner_model_dir),
            "--input",
            str(src),
            "--output",
            str(out),
            "--batch-size",
            "4",
            "--threads",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and child.poll() is None:
        if progress.exists():
            try:
                done = json.loads(progress.read_text())["records"]
            except (ValueError, KeyError):
                done = 0
            if done >= 300:
                break
        time.sleep(0.005)
    assert child.poll() is None, "the run finished before it could be interrupted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert 0 < done < len(records)
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "partial line from the kill')  # what a crash mid-write leaves

    proc = engine(
        "run",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--resume",
    )
    assert "resumed" in proc.stderr
    assert out.read_bytes() == full.read_bytes()
    assert not progress.exists()


def test_classification_run_and_pairs(tmp_path, sentiment_model_dir):  # noqa: F811
    records = [
        {"id": "a", "text": "I loved every minute of it."},
        {"id": "b", "text": "Terrible service.", "text_pair": "Would not go back."},
        {"id": "c", "text": ""},
    ]
    src = write_jsonl(tmp_path / "reviews.jsonl", records)
    out = tmp_path / "labels.jsonl"
    engine(
        "run",
        "--task",
        "classification",
        "--model",
        sentiment_model_dir,
        "--input",
        src,
        "--output",
        out,
        "--top-k",
        "0",
    )
    result = read_jsonl(out)
    assert [r["id"] for r in result] == ["a", "b", "c"]
    expected = nlpengine.pipeline("classification", model=sentiment_model_dir, top_k=0)(records)
    assert [r["labels"] for r in result] == json.loads(json.dumps(expected))
    for r in result:
        assert {x["label"] for x in r["labels"]} == {"negative", "positive"}
        assert abs(sum(x["score"] for x in r["labels"]) - 1.0) < 1e-5


def test_compute_type_reaches_every_model_the_command_loads(
    tmp_path,
    sentiment_model_dir,  # noqa: F811
    monkeypatch,
):
    texts = ["I loved every minute of it.", "Terrible service.", "Fine."]
    src = write_jsonl(tmp_path / "reviews.jsonl", [{"text": t} for t in texts])
    scores = {}
    for compute_type in ("int8", "float32"):
        out = tmp_path / f"{compute_type}.jsonl"
        engine("run", "--task", "classification", "--model", sentiment_model_dir,
               "--input", src, "--output", out, "--top-k", "0",
               "--compute-type", compute_type)  # fmt: skip
        result = [r["labels"] for r in read_jsonl(out)]
        monkeypatch.setenv("NLPENGINE_COMPUTE_TYPE", compute_type)
        pipe = nlpengine.pipeline("classification", model=sentiment_model_dir, top_k=0)
        assert result == json.loads(json.dumps(pipe(texts))), compute_type
        scores[compute_type] = [x["score"] for r in result for x in r]
    assert scores["int8"] != scores["float32"]  # the int8 model really ran
    assert max(abs(a - b) for a, b in zip(*scores.values(), strict=True)) < 0.05

    monkeypatch.setenv("NLPENGINE_COMPUTE_TYPE", "fp8")
    with pytest.raises(ValueError, match="NLPENGINE_COMPUTE_TYPE must be one of"):
        nlpengine.load(sentiment_model_dir)
    proc = engine("run", "--task", "classification", "--model", sentiment_model_dir,
                  "--input", src, "--output", tmp_path / "x.jsonl", "--compute-type", "fp8",
                  check=False)  # fmt: skip
    assert proc.returncode == 2 and "'fp8' is not one of" in proc.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NLPENGINE_INT8_ARITHMETIC", "int9", "expected int8 or int16"),
        ("NLPENGINE_GEMM_LIBRARY", "openblas", "expected mkl or onednn"),
    ],
)
def test_a_bad_runtime_setting_is_a_usage_error(
    tmp_path,
    sentiment_model_dir,  # noqa: F811
    variable,
    value,
    expected,
):
    """The runtime's environment settings are checked before any work: the error names the
    variable and its value, with no traceback and no output file."""
    src = write_jsonl(tmp_path / "reviews.jsonl", [{"text": "Fine."}])
    out = tmp_path / "labels.jsonl"
    proc = engine("run", "--task", "classification", "--model", sentiment_model_dir,
                  "--input", src, "--output", out, "--compute-type", "int8",
                  env={**os.environ, variable: value}, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"{variable}={value}: {expected}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_eval_ner_and_classification(tmp_path, ner_model_dir, sentiment_model_dir):  # noqa: F811
    gold = tmp_path / "gold.conll"
    gold.write_text(
        "# text = Grace Hopper visited Paris .\nGrace B-PER\nHopper I-PER\nvisited O\n"
        "Paris B-LOC\n. O\n\nNothing O\nhere O\n. O\n\n",
        "utf-8",
    )
    metrics_path = tmp_path / "m.json"
    proc = engine(
        "eval",
        "--task",
        "ner",
        "--model",
        ner_model_dir,
        "--data",
        gold,
        "--output",
        metrics_path,
        "--json",
    )
    metrics = json.loads(proc.stdout)
    assert metrics == json.loads(metrics_path.read_text())
    assert metrics["sentences"] == 2 and {"precision", "recall", "f1"} <= set(metrics)

    gold_cls = write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {"text": "Great film.", "label": "positive"},
            {"text": "Awful film.", "label": "negative"},
            {"text": "Fine.", "label": "positive"},
        ],
    )
    proc = engine(
        "eval",
        "--task",
        "classification",
        "--model",
        sentiment_model_dir,
        "--data",
        gold_cls,
        "--json",
    )
    metrics = json.loads(proc.stdout)
    predictions = nlpengine.pipeline("classification", model=sentiment_model_dir)(
        ["Great film.", "Awful film.", "Fine."]
    )
    correct = sum(
        p[0]["label"] == g
        for p, g in zip(predictions, ["positive", "negative", "positive"], strict=True)
    )
    assert metrics["accuracy"] == pytest.approx(correct / 3)
    assert set(metrics["per_class"]) == {"negative", "positive"}


def test_eval_names_the_line_of_a_gold_label_the_model_does_not_have(
    tmp_path,
    sentiment_model_dir,  # noqa: F811
):
    """It failed in the metrics, naming neither the file nor the record."""
    gold = write_jsonl(
        tmp_path / "gold.jsonl",
        [{"text": "Great film.", "label": "positive"}, {"text": "Meh.", "label": "neutral"}],
    )
    args = ("eval", "--task", "classification", "--model", sentiment_model_dir, "--data", gold)
    proc = engine(*args, check=False)
    assert proc.returncode != 0
    assert f"{gold}:2" in proc.stderr and "'neutral'" in proc.stderr and "positive" in proc.stderr


def test_eval_names_the_line_of_a_gold_tag_outside_the_scheme(
    tmp_path,
    ner_model_dir,  # noqa: F811
):
    """It named "gold sentence 1, token 2", not the file or its line."""
    gold = tmp_path / "gold.conll"
    gold.write_text("Grace B-PER\nHopper I-PER\n\nin O\nParis B-LOC\nnow W-FOO\n\n", "utf-8")
    proc = engine("eval", "--task", "ner", "--model", ner_model_dir, "--data", gold, check=False)
    assert proc.returncode != 0
    assert f"{gold}:4: token 3" in proc.stderr and "'W-FOO'" in proc.stderr


def test_every_command_help_shows_an_example():
    for command in ([], ["run"], ["eval"], ["tasks"], ["encode"], ["bench"]):
        proc = engine(*command, "--help")
        assert "Example" in proc.stdout, command


def test_tasks_lists_the_built_in_tasks():
    listing = json.loads(engine("tasks", "--json").stdout)
    by_name = {t["task"]: t for t in listing["tasks"]}
    assert by_name["ner"]["source"] == "built-in" and by_name["ner"]["plugin"] == "ner"
    assert by_name["classification"]["version"] == nlpengine.__version__
    assert by_name["ner"]["options"]["aggregation_strategy"] == "simple"
    assert "ner" in engine("tasks").stdout


def test_unknown_task_is_a_clear_error(tmp_path):
    src = write_jsonl(tmp_path / "x.jsonl", [{"text": "x"}])
    proc = engine(
        "run", "--task", "nope", "--input", src, "--output", tmp_path / "o.jsonl", check=False
    )
    assert proc.returncode != 0 and "unknown task 'nope'" in proc.stderr and "ner" in proc.stderr
