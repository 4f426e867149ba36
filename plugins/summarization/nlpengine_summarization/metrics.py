"""ROUGE for summaries, computed with Google's ``rouge-score`` package (the ``eval`` extra).

Scores are F-measures with Porter stemming, averaged over the examples (the mean of the
per-summary scores, as ``rouge_score.scoring.BootstrapAggregator`` estimates without its
resampling). ROUGE-Lsum is the summary-level LCS over sentences: sentences are the lines
of a text, or, for a text on one line, the pieces after each ``.``, ``!`` or ``?`` that
is followed by white space (a plain rule: nltk's punkt models are not needed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["ROUGE_TYPES", "rouge_scores", "split_sentences"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> str:
    """The text with one sentence per line (what rougeLsum reads)."""
    lines = [line.strip() for line in text.splitlines()]
    if len([line for line in lines if line]) > 1:
        return "\n".join(line for line in lines if line)
    return "\n".join(s for s in _SENTENCE_END.split(text.strip()) if s)


def rouge_scores(
    predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = True
) -> dict:
    """Mean ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures (and precision / recall)
    of ``predictions`` against ``references`` (one reference per prediction).

    Returns ``{"rouge1", "rouge2", "rougeL", "rougeLsum"}`` (F-measures in [0, 1]),
    ``"precision"`` and ``"recall"`` dicts by type, and ``"num_examples"``.
    """
    try:
        from rouge_score import rouge_scorer
    except ImportError as e:  # pragma: no cover - environment problem
        raise ImportError(
            "summarization metrics need rouge-score: pip install 'nlpengine[eval]'"
        ) from e
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: "
            "one reference per prediction"
        )
    if not predictions:
        raise ValueError("no summaries to score")
    for name, texts in (("predictions", predictions), ("references", references)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{name}[{i}]: expected a str, got {type(text).__name__}")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = {t: [0.0, 0.0, 0.0] for t in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(split_sentences(reference), split_sentences(prediction))
        for t in ROUGE_TYPES:
            totals[t][0] += scores[t].precision
            totals[t][1] += scores[t].recall
            totals[t][2] += scores[t].fmeasure
    n = len(predictions)
    result: dict = {t: totals[t][2] / n for t in ROUGE_TYPES}
    result["precision"] = {t: totals[t][0] / n for t in ROUGE_TYPES}
    result["recall"] = {t: totals[t][1] / n for t in ROUGE_TYPES}
    result["num_examples"] = n
    return result
