"""classification_metrics against values worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test the plugin's source in this checkout, not a copy installed into site-packages.
_PLUGIN_SRC = Path(__file__).resolve().parents[2] / "plugins" / "classification"
if _PLUGIN_SRC.is_dir() and str(_PLUGIN_SRC) not in sys.path:
    sys.path.insert(0, str(_PLUGIN_SRC))

from nlpengine_classification import classification_metrics  # noqa: E402

approx = pytest.approx


def test_binary():
    gold = ["pos", "pos", "pos", "pos", "neg", "neg"]
    pred = ["pos", "pos", "pos", "pos", "pos", "neg"]
    m = classification_metrics(gold, pred)
    # pos: TP 4, FP 1, FN 0 -> P 4/5, R 1, F1 8/9; neg: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3
    assert m["accuracy"] == approx(5 / 6)
    assert m["macro_f1"] == approx((8 / 9 + 2 / 3) / 2)
    assert m["micro_f1"] == approx(5 / 6)
    assert m["weighted_f1"] == approx((4 * 8 / 9 + 2 * 2 / 3) / 6)
    assert m["num_examples"] == 6
    assert list(m["per_class"]) == ["neg", "pos"]  # sorted union of gold and pred
    assert m["per_class"]["pos"] == approx(
        {"precision": 4 / 5, "recall": 1.0, "f1": 8 / 9, "support": 4}
    )
    assert m["per_class"]["neg"] == approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert isinstance(m["per_class"]["pos"]["support"], int)
    assert all(type(m[k]) is float for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1"))


def test_three_classes():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(gold, pred)
    # a: TP 2 FP 0 FN 1 -> P 1, R 2/3, F1 4/5; b: TP 1 FP 1 FN 1 -> 1/2 each;
    # c: TP 1 FP 1 FN 0 -> P 1/2, R 1, F1 2/3
    assert m["accuracy"] == approx(4 / 6)
    assert m["micro_f1"] == approx(4 / 6)
    assert m["macro_f1"] == approx(59 / 90)
    assert m["weighted_f1"] == approx(61 / 90)
    assert m["per_class"]["a"] == approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert m["per_class"]["b"] == approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )


def test_explicit_labels_include_unseen_class():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(gold, pred, labels=["c", "b", "a", "d"])
    assert list(m["per_class"]) == ["c", "b", "a", "d"]
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == approx((4 / 5 + 1 / 2 + 2 / 3 + 0) / 4)
    assert m["accuracy"] == approx(4 / 6)


def test_integer_labels():
    m = classification_metrics([0, 1, 1, 2], [0, 1, 0, 2])
    assert m["accuracy"] == approx(0.75)
    assert list(m["per_class"]) == [0, 1, 2]
    assert m["per_class"][1] == approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})


def test_multi_label():
    gold = [["x", "y"], ["x"], [], ["z"]]
    pred = [["x"], ["z", "x"], [], ["z"]]
    m = classification_metrics(gold, pred, multi_label=True)
    # x: TP 2 -> 1/1/1; y: FN 1 -> 0/0/0; z: TP 1 FP 1 -> 1/2, 1, 2/3; micro TP 3 FP 1 FN 1
    assert m["subset_accuracy"] == approx(0.5)
    assert m["accuracy"] == m["subset_accuracy"]
    assert m["micro_f1"] == approx(0.75)
    assert m["macro_f1"] == approx((1 + 0 + 2 / 3) / 3)
    assert m["weighted_f1"] == approx((2 * 1 + 1 * 0 + 1 * 2 / 3) / 4)
    assert list(m["per_class"]) == ["x", "y", "z"]
    assert m["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["z"] == approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )


def test_multi_label_explicit_labels():
    m = classification_metrics(
        [["x"], ["y"]], [["x"], []], labels=["y", "x", "w"], multi_label=True
    )
    assert list(m["per_class"]) == ["y", "x", "w"]
    assert m["subset_accuracy"] == approx(0.5)
    assert m["micro_f1"] == approx(2 / 3)  # TP 1, FN 1
    assert m["per_class"]["w"]["support"] == 0


def test_length_mismatch():
    with pytest.raises(ValueError, match="same length.*3 gold and 2 predicted"):
        classification_metrics(["a", "b", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        classification_metrics([["a"]], [["a"], []], multi_label=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(gold=[], pred=[]), ValueError, "empty"),
        (dict(gold=["a", "b"], pred=["a", "z"], labels=["a", "b"]), ValueError, r"\['z'\]"),
        (dict(gold=["ab"], pred=[["a"]], multi_label=True), TypeError, r"gold\[0\]"),
        (dict(gold=[[]], pred=[[]], multi_label=True), ValueError, "no labels"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        classification_metrics(**kwargs)
