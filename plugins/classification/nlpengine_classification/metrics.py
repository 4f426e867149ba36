"""Classification metrics, computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

__all__ = ["classification_metrics"]


def _label_order(values: Iterable[Hashable]) -> list:
    unique = set(values)
    try:
        return sorted(unique)
    except TypeError:  # mixed label types: order by their text
        return sorted(unique, key=str)


def _check_known(labels: list, seen: Iterable[Hashable]) -> None:
    known = set(labels)
    unknown = {x for x in seen if x not in known}
    if unknown:
        raise ValueError(
            f"labels {_label_order(unknown)!r} occur in gold or pred but not in labels={labels!r}"
        )


def _label_sets(name: str, rows: Sequence[Any]) -> list[tuple]:
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Iterable):
            raise TypeError(
                f"{name}[{i}]: multi-label examples are lists of labels, got {type(row).__name__}"
            )
        out.append(tuple(row))
    return out


def classification_metrics(
    gold: Sequence[Any],
    pred: Sequence[Any],
    labels: Sequence[Hashable] | None = None,
    multi_label: bool = False,
) -> dict:
    """Accuracy, F1 averages and a per-class report for predicted against gold labels.

    Single-label: ``gold`` and ``pred`` hold one label per example.  Multi-label
    (``multi_label=True``): each example is a list of labels (possibly empty), scored on
    the label-indicator matrix; ``accuracy`` is then the subset accuracy (every label of
    an example right), also reported as ``subset_accuracy``.

    ``labels``: the classes to report, in order; None uses the sorted union of gold and
    pred. A label in gold or pred outside ``labels`` is a ValueError.

    Returns ``{"accuracy", "macro_f1", "micro_f1", "weighted_f1", "num_examples",
    "per_class": {label: {"precision", "recall", "f1", "support"}}}`` (plus
    ``"subset_accuracy"`` for multi-label), plain Python numbers. Classes without
    predictions or without gold examples score 0 where the ratio is undefined.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    gold = list(gold)
    pred = list(pred)
    if len(gold) != len(pred):
        raise ValueError(
            f"gold and pred must have the same length, got {len(gold)} gold and "
            f"{len(pred)} predicted examples"
        )
    if not gold:
        raise ValueError("gold and pred are empty: no examples to score")

    if multi_label:
        gold_sets = _label_sets("gold", gold)
        pred_sets = _label_sets("pred", pred)
        seen = [x for row in gold_sets + pred_sets for x in row]
        labels = _label_order(seen) if labels is None else list(labels)
        _check_known(labels, seen)
        binarizer = MultiLabelBinarizer(classes=labels)
        y_true = binarizer.fit_transform(gold_sets)
        y_pred = binarizer.transform(pred_sets)
        label_arg: dict = {}
    else:
        labels = _label_order(gold + pred) if labels is None else list(labels)
        _check_known(labels, gold + pred)
        y_true, y_pred = gold, pred
        label_arg = {"labels": labels}

    if not labels:
        raise ValueError("no labels to score: every multi-label example is empty")

    def f1(average: str) -> float:
        return float(f1_score(y_true, y_pred, average=average, zero_division=0, **label_arg))

    precision, recall, f1_per_class, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=0, **label_arg
    )
    result = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro"),
        "weighted_f1": f1("weighted"),
        "num_examples": len(gold),
        "per_class": {
            label: {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for label, p, r, f, s in zip(
                labels, precision, recall, f1_per_class, support, strict=True
            )
        },
    }
    if multi_label:
        result["subset_accuracy"] = result["accuracy"]
    return result
