"""SQuAD exact match and F1, written from the metric's definition (Rajpurkar et al. 2016,
2018).

Answers are compared after normalisation: lower case, punctuation removed, the articles
"a", "an", "the" removed as words, whitespace collapsed. Exact match is 1 when the
normalised prediction equals a normalised gold answer; F1 is the harmonic mean of the
precision and recall of the normalised prediction's words against a gold answer's (words
counted with multiplicity). Each question takes the best over its gold answers. A
question without a gold answer (SQuAD 2.0 "impossible") has the empty answer as its only
gold answer, so only an empty prediction scores 1 on it; an empty prediction on an
answerable question scores 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["exact_match", "f1_score", "normalize_answer", "squad_metrics"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def _golds(answers: Sequence[str]) -> list[str]:
    """Gold answers that are not empty once normalised, or ``[""]`` when none is."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def squad_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Mean exact match and F1 (in percent, as the SQuAD scripts report them) of
    ``predictions`` (one answer text per question, ``""`` for no answer) against
    ``references`` (the gold answer texts of each question; empty for no answer).

    Returns ``{"exact_match", "f1", "total"}`` and, when some question has no answer,
    ``HasAns_*`` / ``NoAns_*`` means over the answerable and unanswerable questions.
    """
    if isinstance(predictions, str) or len(predictions) != len(references):
        raise ValueError(
            f"expected one prediction per question, got {len(predictions)} predictions "
            f"for {len(references)} questions"
        )
    em, f1, has_answer = [], [], []
    for i, (prediction, answers) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(prediction, str) or isinstance(answers, str):
            raise TypeError(f"question {i}: expected a prediction string and a list of answers")
        golds = _golds(answers)
        em.append(max(exact_match(prediction, g) for g in golds))
        f1.append(max(f1_score(prediction, g) for g in golds))
        has_answer.append(golds != [""])

    def summary(prefix: str, keep) -> dict:
        rows = [i for i in range(len(em)) if keep(i)]
        return {
            f"{prefix}exact_match": 100.0 * sum(em[i] for i in rows) / len(rows) if rows else 0.0,
            f"{prefix}f1": 100.0 * sum(f1[i] for i in rows) / len(rows) if rows else 0.0,
            f"{prefix}total": len(rows),
        }

    result = summary("", lambda i: True)
    if not all(has_answer):
        result.update(summary("HasAns_", lambda i: has_answer[i]))
        result.update(summary("NoAns_", lambda i: not has_answer[i]))
    return result
