"""``engine run|eval|tasks`` for the qa task: SQuAD and JSONL input, options, bad records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_qa import CONTEXTS, QUESTIONS, save_qa_model
from nlpengine_qa import QaPipeline, squad_metrics

ENGINE = Path(sys.executable).with_name("engine")
OPTIONS = ["--top-k", "2", "--max-seq-len", "64", "--doc-stride", "16"]
OPTION_VALUES = dict(top_k=2, max_seq_len=64, doc_stride=16)


def engine(*args, check=True):
    proc = subprocess.run(
        [str(ENGINE), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory) -> Path:
    return save_qa_model(tmp_path_factory.mktemp("qa-cli") / "bert", "bert", seed=7)


def squad_file(path: Path) -> Path:
    """Two paragraphs, one shared by three questions, one unanswerable (v2)."""
    long_context = CONTEXTS[3]
    at = long_context.index("bridge number 7")
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Synthetic",
                "paragraphs": [
                    {
                        "context": CONTEXTS[0],
                        "qas": [
                            {
                                "id": "a",
                                "question": QUESTIONS[0],
                                "answers": [{"text": "New York", "answer_start": 19}],
                            }
                        ],
                    },
                    {
                        "context": long_context,
                        "qas": [
                            {
                                "id": f"b{i}",
                                "question": q,
                                "answers": [{"text": "bridge number 7", "answer_start": at}],
                            }
                            for i, q in enumerate(QUESTIONS[:3])
                        ]
                        + [{"id": "c", "question": "Who?", "answers": [], "is_impossible": True}],
                    },
                ],
            }
        ],
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), "utf-8")
    return path


def test_tasks_lists_qa_with_its_options():
    listing = json.loads(engine("tasks", "--json").stdout)["tasks"]
    qa = next(t for t in listing if t["task"] == "qa")
    assert qa["head"] == "question_answering" and qa["source"] == "built-in"
    assert qa["options"] == {
        "top_k": 1,
        "doc_stride": None,
        "max_answer_len": 15,
        "max_question_len": 64,
        "max_seq_len": None,
        "handle_impossible_answer": False,
    }


def test_run_on_squad_json_matches_the_pipeline(tmp_path, qa_dir):
    src = squad_file(tmp_path / "dev.json")
    out = tmp_path / "answers.jsonl"
    engine("run", "--task", "qa", "--model", qa_dir, "--input", src, "--output", out, *OPTIONS)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "b0", "b1", "b2", "c"]
    records = json.loads(src.read_text("utf-8"))["data"][0]["paragraphs"]
    pairs = [(qa["question"], p["context"]) for p in records for qa in p["qas"]]
    expected = QaPipeline(qa_dir, **OPTION_VALUES)(pairs)
    for row, answers, (_, context) in zip(rows, expected, pairs, strict=True):
        assert [(a["text"], a["start"], a["end"]) for a in row["answers"]] == [
            (a["text"], a["start"], a["end"]) for a in answers
        ]
        assert all(context[a["start"] : a["end"]] == a["text"] for a in row["answers"])
        assert [a["score"] for a in row["answers"]] == pytest.approx(
            [a["score"] for a in answers], abs=1e-6
        )


def test_jsonl_bad_records_are_skipped_or_stop_the_job(tmp_path, qa_dir):
    src = tmp_path / "questions.jsonl"
    src.write_text(
        json.dumps({"id": 1, "question": QUESTIONS[0], "context": CONTEXTS[0]})
        + "\n"
        + '{"id": 2, "question": "broken\n'
        + json.dumps({"id": 3, "question": "No context?"})
        + "\n"
        + json.dumps({"id": 4, "question": "x " * 80, "context": CONTEXTS[1]})
        + "\n"
        + json.dumps({"id": 5, "question": QUESTIONS[1], "context": ""})
        + "\n",
        "utf-8",
    )
    out = tmp_path / "out.jsonl"
    args = ["run", "--task", "qa", "--model", qa_dir, "--input", src, "--output", out]
    engine(*args, "--max-seq-len", "48", "--max-question-len", "40", "--on-error", "skip")
    assert [r["id"] for r in read_jsonl(out)] == [1, 5]
    assert read_jsonl(out)[1]["answers"] == []  # an empty context has no answer
    rejects = read_jsonl(Path(f"{out}.rejects.jsonl"))
    assert [r["line"] for r in rejects] == [2, 3, 4]
    assert "JSON" in rejects[0]["error"]
    assert "context" in rejects[1]["error"]
    assert "question" in rejects[2]["error"] and "doc_stride" in rejects[2]["error"]

    out2 = tmp_path / "out2.jsonl"
    proc = engine(*args[:-1], out2, "--max-seq-len", "48", check=False)
    assert proc.returncode != 0 and f"{src}:2" in proc.stderr
    assert [r["id"] for r in read_jsonl(out2)] == [1]  # what came before is kept


def test_squad_question_with_a_misplaced_answer_names_its_line(tmp_path, qa_dir):
    src = squad_file(tmp_path / "dev.json")
    data = json.loads(src.read_text("utf-8"))
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    src.write_text(json.dumps(data, indent=1), "utf-8")
    lines = [text.strip() for text in src.read_text("utf-8").splitlines()]
    line = lines.index('"id": "a",')  # 0-based index of "id" = 1-based line of the "{" above
    proc = engine("eval", "--task", "qa", "--model", qa_dir, "--data", src, check=False)
    assert proc.returncode != 0
    assert f"{src}:{line}:" in proc.stderr and "not at character 3" in proc.stderr
    out = tmp_path / "run.jsonl"
    engine(
        "run", "--task", "qa", "--model", qa_dir, "--input", src, "--output", out,
        "--on-error", "skip", *OPTIONS,
    )  # fmt: skip
    assert [r["line"] for r in read_jsonl(Path(f"{out}.rejects.jsonl"))] == [line]
    assert [r["id"] for r in read_jsonl(out)] == ["b0", "b1", "b2", "c"]


def test_eval_reports_squad_metrics_of_the_best_answers(tmp_path, qa_dir):
    src = squad_file(tmp_path / "dev.json")
    options = ["--max-seq-len", "64", "--doc-stride", "16", "--handle-impossible-answer", "true"]
    metrics = json.loads(
        engine("eval", "--task", "qa", "--model", qa_dir, "--data", src, "--json", *options).stdout
    )
    paragraphs = json.loads(src.read_text("utf-8"))["data"][0]["paragraphs"]
    qas = [(qa, p["context"]) for p in paragraphs for qa in p["qas"]]
    pipe = QaPipeline(qa_dir, max_seq_len=64, doc_stride=16, handle_impossible_answer=True)
    best = pipe([(qa["question"], c) for qa, c in qas])
    expected = squad_metrics(
        [a[0]["text"] if a else "" for a in best],
        [[x["text"] for x in qa["answers"]] for qa, _ in qas],
    )
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value)
    assert metrics["questions"] == 5 and metrics["NoAns_total"] == 1
