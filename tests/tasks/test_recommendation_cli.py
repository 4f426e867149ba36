"""``engine run|eval --task recommendation``: items and interactions as task options,
streamed requests, --on-error, --resume, and the metrics of engine eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_recommendation import data_files, save_bi_encoder, write_jsonl
from nlpengine_recommendation import RecommendationPipeline
from nlpengine_recommendation.request import parse_request

ENGINE = Path(sys.executable).with_name("engine")
REQUESTS = [
    {"id": "a", "user_id": "u1", "k": 2},
    {"id": "b", "history": [2, 6], "candidates": [1, 3, "m4"]},
    {"id": "c", "user_id": "nobody"},  # no interactions: a bad record
    {"id": "d", "text": "robots"},
    {"id": "e", "user_id": 3},
]


def engine(*args, check=True):
    proc = subprocess.run([str(ENGINE), *map(str, args)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec-cli")
    items, interactions = data_files(d)
    model_dir, _ = save_bi_encoder(d / "bi")
    requests = write_jsonl(d / "requests.jsonl", REQUESTS)
    return model_dir, items, interactions, requests


def test_run_skip_writes_rankings_and_rejects(setup, tmp_path):
    model_dir, items, interactions, requests = setup
    out = tmp_path / "out.jsonl"
    engine("run", "--task", "recommendation", "--model", model_dir, "--input", requests,
           "--output", out, "--items", items, "--interactions", interactions, "--top-k", "3",
           "--on-error", "skip", "--batch-size", "2")  # fmt: skip
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "b", "d", "e"]
    assert rows[0]["user_id"] == "u1" and len(rows[0]["items"]) == 2  # the request's k
    assert {x["item_id"] for x in rows[1]["items"]} == {1, 3, "m4"}
    assert rows[2]["user_id"] is None and len(rows[2]["items"]) == 3
    rejects = read_jsonl(Path(f"{out}.rejects.jsonl"))
    assert rejects[0]["line"] == 3 and "user_id 'nobody' has no interactions" in rejects[0]["error"]
    # The same as the Python pipeline.
    pipe = RecommendationPipeline(model_dir, items=items, interactions=interactions, top_k=3)
    expected = pipe([parse_request({k: v for k, v in r.items() if k != "id"})
                     for r in REQUESTS if r["id"] != "c"])  # fmt: skip
    # Scores to float32 rounding: a product of more rows may add in another order (on a
    # CPU without AVX-512, up to 32 rows take the runtime's own kernel, more the library's).
    assert [[i["item_id"] for i in r["items"]] for r in rows] == [
        [i["item_id"] for i in e["items"]] for e in expected
    ]
    scores = [i["score"] for r in rows for i in r["items"]]
    assert scores == pytest.approx([i["score"] for e in expected for i in e["items"]], rel=1e-5)


def test_run_fail_names_file_and_line_and_resume_finishes(setup, tmp_path):
    model_dir, items, interactions, requests = setup
    out = tmp_path / "out.jsonl"
    args = ["run", "--task", "recommendation", "--model", model_dir, "--input", requests,
            "--output", out, "--items", items, "--interactions", interactions]  # fmt: skip
    proc = engine(*args, check=False)
    assert proc.returncode != 0
    assert f"{requests}:3: ValueError: user_id 'nobody' has no interactions" in proc.stderr
    assert [r["id"] for r in read_jsonl(out)] == ["a", "b"]  # kept what came before
    good = [r if r["id"] != "c" else {"id": "c", "user_id": "u2"} for r in REQUESTS]
    fixed = write_jsonl(requests.parent / "fixed.jsonl", good)
    args[args.index(requests)] = fixed
    engine(*args, "--resume")
    full = tmp_path / "full.jsonl"
    args[args.index(out)] = full
    engine(*args)
    # The resumed run batches the remaining records differently, and the GEMM library may
    # pick its kernels by row count: the same records and rankings, scores to 1e-5.
    resumed, whole = read_jsonl(out), read_jsonl(full)
    assert [(r["id"], [i["item_id"] for i in r["items"]]) for r in resumed] == [
        (r["id"], [i["item_id"] for i in r["items"]]) for r in whole
    ]
    for a, b in zip(resumed, whole, strict=True):
        scores = [i["score"] for i in b["items"]]
        assert [i["score"] for i in a["items"]] == pytest.approx(scores, abs=1e-5)


def test_missing_items_option_is_a_clear_error(setup, tmp_path):
    model_dir, _, _, requests = setup
    proc = engine("run", "--task", "recommendation", "--model", model_dir, "--input", requests,
                  "--output", tmp_path / "o.jsonl", check=False)  # fmt: skip
    assert proc.returncode != 0 and "needs the items file: --items" in proc.stderr


def test_eval_reports_ranking_metrics(setup, tmp_path):
    model_dir, items, interactions, _ = setup
    test = write_jsonl(tmp_path / "test.jsonl", [{"user_id": "u1", "item_id": 2},
                                                  {"user_id": "u2", "item_id": 7},
                                                  {"user_id": "new", "item_id": 1}])  # fmt: skip
    out = tmp_path / "m.json"
    engine("eval", "--task", "recommendation", "--model", model_dir, "--data", test,
           "--items", items, "--interactions", interactions, "--output", out)  # fmt: skip
    metrics = json.loads(out.read_text())
    for key in ("ndcg@10", "recall@10", "mrr", "auc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["users"] == 2 and metrics["users_without_history"] == 1
    assert metrics["recall@10"] == 1.0  # at most 6 candidates each: all within the top 10
    engine("eval", "--task", "recommendation", "--model", model_dir, "--data", test,
           "--items", items, "--interactions", interactions, "--output", out,
           "--eval-negatives", "2")  # fmt: skip
    assert json.loads(out.read_text())["candidates"] == "2 sampled negatives"
