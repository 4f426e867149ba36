"""Broken QA checkpoints and bad pipeline inputs give clear errors, never a crash."""

from __future__ import annotations

import json

import nlpengine
import numpy as np
import pytest
from conftest import (
    copy_model_dir,
    rebuild_safetensors,
    tensor_array,
    tensor_entry,
    tensors_from_safetensors,
)
from conftest_qa import CONTEXTS, save_qa_model
from nlpengine_qa import QaPipeline


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory):
    return save_qa_model(tmp_path_factory.mktemp("qa-bad") / "bert", "bert", seed=2)


def test_span_head_with_other_than_two_outputs_names_the_tensor(tmp_path, qa_dir):
    broken = copy_model_dir(qa_dir, tmp_path / "three")
    path = broken / "model.safetensors"
    tensors, metadata = tensors_from_safetensors(path)
    for name in ("qa_outputs.weight", "qa_outputs.bias"):
        array = tensor_array(tensors[name])
        tensors[name] = tensor_entry(np.concatenate([array, array[:1]]), "F32")
    rebuild_safetensors(path, tensors, metadata)
    with pytest.raises(
        nlpengine.ModelError,
        match=r"model\.safetensors: tensor 'qa_outputs\.weight' has shape \[3, 40\]",
    ):
        nlpengine.load(broken)


def test_missing_span_head_names_the_tensor(tmp_path, qa_dir):
    broken = copy_model_dir(qa_dir, tmp_path / "headless")
    path = broken / "model.safetensors"
    tensors, metadata = tensors_from_safetensors(path)
    del tensors["qa_outputs.weight"]
    rebuild_safetensors(path, tensors, metadata)
    with pytest.raises(nlpengine.ModelError, match=r"qa_outputs\.weight"):
        nlpengine.load(broken)


def test_pipeline_needs_a_qa_model_and_pairs(tmp_path, qa_dir):
    other = copy_model_dir(qa_dir, tmp_path / "encoder")
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["BertModel"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="question-answering model"):
        QaPipeline(other)
    pipe = QaPipeline(qa_dir, max_seq_len=32, doc_stride=8)
    with pytest.raises(TypeError, match="input 1"):
        pipe([("q", "c"), "just a text"])
    with pytest.raises(ValueError, match="doc_stride"):
        QaPipeline(qa_dir, max_seq_len=32, doc_stride=40)
    # A question that leaves no room for its context names the pair it came in.
    long_question = " ".join(["why"] * 40)
    with pytest.raises(ValueError, match=r"input 1: the question \(\d+ tokens\) leaves 0"):
        pipe([("Who?", CONTEXTS[0]), (long_question, CONTEXTS[0])])
    with pytest.raises(ValueError, match="top_k"):
        QaPipeline(qa_dir, top_k=0)
    # Empty question, empty context, control characters and any script all run.
    pairs = [("", CONTEXTS[0]), ("Who?", ""), ("\x07\x00?", "Tab\tand\nnew line 東京")]
    results = pipe(pairs)
    assert len(results) == 3 and results[1] == []
    for (_, context), answers in zip(pairs, results, strict=True):
        assert all(context[a["start"] : a["end"]] == a["text"] for a in answers)
