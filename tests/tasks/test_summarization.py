"""The summarization task: registration and options, the JSONL / text adapter, the
truncation warning naming the record, generation options reaching the runtime, ROUGE on
hand-computed cases, and engine run / eval end to end on a tiny BART (runtime generate
compared with transformers' generate)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from nlpengine.cli.options import parse_task_options
from nlpengine.io import InputError
from nlpengine.plugins import get_registry
from nlpengine.runner import run_job
from nlpengine.tasks import RecordError
from nlpengine_summarization import SummarizationPipeline, rouge_scores
from nlpengine_summarization.metrics import split_sentences
from nlpengine_summarization.pipeline import source_limit
from seq2seq_fixtures import save_tiny_summarizer, summary_records

ENGINE = Path(sys.executable).with_name("engine")
approx = pytest.approx


@pytest.fixture(scope="module")
def bart_dir(tmp_path_factory) -> Path:
    return save_tiny_summarizer(tmp_path_factory.mktemp("bart") / "bart", "bart", seed=4)


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    path = save_tiny_summarizer(tmp_path_factory.mktemp("t5") / "t5", "t5", seed=5)
    config = json.loads((path / "config.json").read_text())
    config["task_specific_params"] = {
        "summarization": {"prefix": "in ", "num_beams": 2, "max_length": 9}
    }
    (path / "config.json").write_text(json.dumps(config))
    return path


class Recording:
    """A runtime model that records the options each generate() call got."""

    def __init__(self, model):
        self._model = model
        self.calls: list[dict] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, input_ids, attention_mask=None, **options):
        self.calls.append({"shape": np.asarray(input_ids).shape, **options})
        return self._model.generate(input_ids, attention_mask=attention_mask, **options)


# -- registration and options ---------------------------------------------------------------

GENERATION_FLAGS = (
    "num_beams",
    "max_new_tokens",
    "min_new_tokens",
    "length_penalty",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "early_stopping",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "max_source_length",
)


def test_registered_with_head_options_and_training():
    spec = get_registry().task("summarization")
    assert spec.head == "seq2seq_lm"
    assert spec.source == "built-in"
    assert set(spec.option_defaults()) == set(GENERATION_FLAGS)
    assert all(value is None for value in spec.option_defaults().values())
    assert spec.training is not None and spec.training.metric == "rougeLsum"
    assert "text" in spec.input_formats and "jsonl" in spec.input_formats

    options = parse_task_options(
        spec,
        ["--num-beams", "4", "--max-new-tokens", "60", "--do-sample", "false", "--top-p", "0.9"],
        "engine run",
    )
    assert options["num_beams"] == 4 and options["max_new_tokens"] == 60
    assert options["do_sample"] is False and options["top_p"] == 0.9
    assert options["length_penalty"] is None
    import click

    with pytest.raises(click.UsageError, match="num-beams"):
        parse_task_options(spec, ["--num-beams", "0"], "engine run")

    listed = subprocess.run(
        [str(ENGINE), "tasks", "--json"], capture_output=True, text=True, check=True
    ).stdout
    assert "summarization" in listed and "num_beams" in listed


def test_adapter_records():
    spec = get_registry().task("summarization")
    assert spec.to_input({"text": "a b", "summary": "a"}, "text") == "a b"
    assert spec.to_input({"body": ""}, "body") == ""
    with pytest.raises(RecordError, match="missing text field 'text'"):
        spec.to_input({"summary": "x"}, "text")
    with pytest.raises(RecordError, match="must be a string"):
        spec.to_input({"text": 3}, "text")
    assert spec.to_output("a1", {"summary": "s", "score": -0.5}) == {
        "id": "a1",
        "summary": "s",
        "score": -0.5,
    }


def test_source_limit():
    assert source_limit({"model_type": "bart", "max_position_embeddings": 1024}) == 1024
    assert source_limit({"model_type": "marian", "max_position_embeddings": 512}) == 512
    assert source_limit({"model_type": "t5"}) == 512
    assert source_limit({"model_type": "t5"}, 2048) == 2048
    assert source_limit({"model_type": "bart", "max_position_embeddings": 64}, 20) == 20
    with pytest.raises(ValueError, match="exceeds the model's max_position_embeddings 64"):
        source_limit({"model_type": "bart", "max_position_embeddings": 64}, 65)


# -- the pipeline on the runtime ------------------------------------------------------------


def test_summaries_match_transformers_generate(bart_dir):
    """Greedy and beam search through the pipeline give transformers' sequences (decoded
    with the same tokenizer), in input order whatever the length-sorted batching."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForSeq2SeqLM

    texts = [
        "alice moved to lisbon last year . it rained on most days of the week .",
        "tom left oslo",
        "",
        "sara visited quito last year . the museum was closed for repairs . and then he left",
    ]
    reference = AutoModelForSeq2SeqLM.from_pretrained(bart_dir).eval()
    tokenizer = Tokenizer.from_file(str(bart_dir / "tokenizer.json"))
    for options in ({"num_beams": 1}, {"num_beams": 3, "length_penalty": 0.7}):
        pipe = SummarizationPipeline(bart_dir, batch_size=3, max_new_tokens=8, **options)
        got = pipe(texts)
        assert len(got) == len(texts)
        for text, result in zip(texts, got, strict=True):
            ids = torch.tensor([tokenizer.encode(text).ids])
            with torch.no_grad():
                out = reference.generate(
                    input_ids=ids, max_new_tokens=8, do_sample=False, **options
                )
            expected = tokenizer.decode(out[0].tolist(), skip_special_tokens=True).strip()
            assert result["summary"] == expected, (options, text)
            assert isinstance(result["score"], float) and np.isfinite(result["score"])


def test_generation_options_reach_the_runtime(bart_dir):
    model = Recording(nlpengine.load(bart_dir, threads=1))
    pipe = SummarizationPipeline(model, batch_size=2, num_beams=2, max_new_tokens=5, seed=None)
    pipe(["alice left oslo", "tom visited lima", "li flew to riga"])
    assert [c["shape"][0] for c in model.calls] == [2, 1]
    assert all(
        {k: v for k, v in c.items() if k != "shape"} == {"num_beams": 2, "max_new_tokens": 5}
        for c in model.calls
    )
    with pytest.raises(TypeError, match="unknown generation option"):
        SummarizationPipeline(model, beams=2)


def test_prefix_and_task_parameters_from_config(t5_dir):
    """config.json's task_specific_params["summarization"] supply the prefix and
    generation defaults (as transformers' summarization pipeline applied them); options
    given win, and a given max_new_tokens replaces the task's max_length."""
    model = Recording(nlpengine.load(t5_dir, threads=1))
    pipe = SummarizationPipeline(model)
    assert pipe.prefix == "in "
    pipe(["oslo"])
    assert model.calls[-1] == {"shape": (1, 3), "num_beams": 2, "max_length": 9}  # in oslo </s>
    pipe = SummarizationPipeline(model, num_beams=1, max_new_tokens=4)
    pipe(["oslo"])
    assert model.calls[-1] == {"shape": (1, 3), "num_beams": 1, "max_new_tokens": 4}


def test_long_input_is_truncated_with_a_warning_naming_the_record(bart_dir, tmp_path):
    long_text = " ".join(["the city has a large old harbour and many parks ."] * 12)
    records = [
        {"id": "short", "text": "tom left oslo"},
        {"id": "long-1", "text": long_text},
        {"text": long_text},  # no id: named by its line
    ]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    pipe = nlpengine.pipeline("summarization", model=bart_dir, max_new_tokens=4)
    out = tmp_path / "out.jsonl"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_job(pipe, data, "jsonl", out)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 2, messages
    assert f"{data}:2 (id 'long-1')" in messages[0]
    assert messages[1].startswith(f"{data}:3:") and "64" in messages[1]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["short", "long-1", 3]
    assert all(set(r) == {"id", "summary", "score"} for r in rows)

    # Called directly, inputs are named by their index; a larger limit than the table is
    # an error, a smaller one truncates earlier.
    with pytest.warns(UserWarning, match="input 1: text truncated to the first 10 "):
        SummarizationPipeline(bart_dir, max_source_length=10, max_new_tokens=2)(
            ["tom left oslo", long_text]
        )
    with pytest.raises(ValueError, match="max_source_length 65 exceeds"):
        SummarizationPipeline(bart_dir, max_source_length=65)


def test_encoder_models_are_refused(tiny_bert_dir):
    with pytest.raises(nlpengine.ModelError, match="encoder-decoder"):
        SummarizationPipeline(tiny_bert_dir)


# -- engine run / eval ----------------------------------------------------------------------


def _engine(*args):
    proc = subprocess.run(
        [str(ENGINE), *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return proc


def test_engine_run_and_eval(bart_dir, tmp_path):
    data = tmp_path / "gold.jsonl"
    data.write_text(summary_records(6, seed=3))
    text_input = tmp_path / "docs.txt"
    text_input.write_text("alice left oslo\n\ntom visited lima last year .\n")
    out = tmp_path / "summaries.jsonl"
    proc = _engine(
        "run",
        "--task",
        "summarization",
        "--model",
        bart_dir,
        "--input",
        text_input,
        "--output",
        out,
        "--num-beams",
        "2",
        "--max-new-tokens",
        "6",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert all(isinstance(r["summary"], str) and isinstance(r["score"], float) for r in rows)

    proc = _engine(
        "eval",
        "--task",
        "summarization",
        "--model",
        bart_dir,
        "--data",
        data,
        "--json",
        "--max-new-tokens",
        "6",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["num_examples"] == 6
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert 0.0 <= metrics[key] <= 1.0

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "a", "summary": "b"}) + "\n" + json.dumps({"text": "c"}))
    proc = _engine("eval", "--task", "summarization", "--model", bart_dir, "--data", bad)
    assert proc.returncode != 0
    assert f"{bad}:2: missing gold field 'summary'" in proc.stderr


def test_evaluate_names_file_and_line_of_bad_json(bart_dir, tmp_path):
    spec = get_registry().task("summarization")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "summary": "b"}\n{not json\n')
    pipe = nlpengine.pipeline("summarization", model=bart_dir)
    with pytest.raises(InputError, match=rf"{bad}:2: not valid JSON"):
        spec.evaluate(pipe, bad, {})


# -- ROUGE ------------------------------------------------------------------------------------


def test_rouge_hand_computed():
    reference = "the cat sat on the mat"
    m = rouge_scores(["the cat sat"], [reference])
    # unigrams: 3 of 3 predicted in the 6 of the reference -> P 1, R 1/2, F 2/3
    assert m["rouge1"] == approx(2 / 3)
    assert m["precision"]["rouge1"] == approx(1.0)
    assert m["recall"]["rouge1"] == approx(0.5)
    # bigrams: "the cat", "cat sat" among the 5 of the reference -> P 1, R 2/5, F 4/7
    assert m["rouge2"] == approx(4 / 7)
    # longest common subsequence 3 -> as ROUGE-1
    assert m["rougeL"] == approx(2 / 3) and m["rougeLsum"] == approx(2 / 3)
    assert m["num_examples"] == 1


def test_rouge_stems_and_averages():
    # Porter stems: cats -> cat, running -> run; two examples averaged (1 and 0).
    m = rouge_scores(["Cats running!", "xyz"], ["the cat run", "abc"])
    # example 1: pred {cat, run} in ref {the, cat, run}: P 1, R 2/3, F 4/5; example 2: 0
    assert m["rouge1"] == approx((4 / 5 + 0) / 2)
    assert rouge_scores(["cats"], ["cat"])["rouge1"] == approx(1.0)
    assert rouge_scores(["cats"], ["cat"], use_stemmer=False)["rouge1"] == approx(0.0)
    assert rouge_scores([""], ["the cat"])["rouge1"] == 0.0


def test_rouge_lsum_is_summary_level():
    # Sentences swapped: one LCS over the whole text finds 2 of 4 tokens, the union LCS
    # per reference sentence finds all 4.
    m = rouge_scores(["c d. a b."], ["a b. c d."])
    assert m["rougeL"] == approx(0.5)
    assert m["rougeLsum"] == approx(1.0)
    assert m["rouge1"] == approx(1.0)
    # reference sentences [a b c], [d e f]; predicted [a b], [d e]: 4 hits of 4 and 6
    m = rouge_scores(["a b.\nd e."], ["a b c.\nd e f."])
    assert m["rougeLsum"] == approx(2 * 1 * (4 / 6) / (1 + 4 / 6))
    assert split_sentences("One. Two!  Three? four") == "One.\nTwo!\nThree?\nfour"
    assert split_sentences("line one\nline two.") == "line one\nline two."


def test_rouge_input_errors():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no summaries"):
        rouge_scores([], [])
    with pytest.raises(TypeError, match=r"references\[0\]"):
        rouge_scores(["a"], [None])
