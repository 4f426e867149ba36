"""Answer spans from start/end logits, scored as transformers' question-answering pipeline
scores them.

Per window: positions that cannot answer (question tokens, special tokens, padding; the
CLS token excepted) get logit -10000, start and end logits each go through a softmax over
the window, a span's score is ``p_start(s) * p_end(e)`` for context tokens ``s <= e < s +
max_answer_len``, and the window's ``2 * top_k + 10`` best spans are candidates
(:func:`best_spans`). The "no answer" score of a window is ``p_start(0) * p_end(0)`` (the
CLS position).

A candidate maps to characters through whole words (transformers' ``align_to_words``,
:func:`word_aligned_chars`): from the first character of the start token's word to the
last of the end token's word, the word's tokens taken within the window. Candidates whose
texts are equal ignoring case are one answer whose score is the sum of theirs (the first
one's offsets kept), over all windows (:func:`merge_answers`); with
``handle_impossible_answer`` the smallest no-answer score over the windows is offered as
the empty answer; the answers are sorted by score (a stable sort) and the first ``top_k``
returned.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NULL_LOGIT",
    "best_spans",
    "candidates_per_window",
    "merge_answers",
    "word_aligned_chars",
]

#: The logit transformers gives positions that cannot be part of an answer.
NULL_LOGIT = -10000.0


def candidates_per_window(top_k: int) -> int:
    """Spans kept per window before merging (some merge into one answer)."""
    return 2 * top_k + 10


def merge_answers(answers: list[dict], text: str, start: int, end: int, score: float) -> None:
    """Add the span ``text[start:end]`` to ``answers``, or its score to the answer with the
    same text ignoring case."""
    target = text[start:end]
    for answer in answers:
        if answer["text"].lower() == target.lower():
            answer["score"] += score
            return
    answers.append({"text": target, "start": start, "end": end, "score": score})


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    allowed: np.ndarray,
    answerable: np.ndarray,
    *,
    top_k: int,
    max_answer_len: int,
) -> tuple[list[tuple[int, int, float]], float]:
    """The ``top_k`` best ``(start, end, score)`` spans of one window (window positions),
    best first, and the window's no-answer score.

    ``allowed``: bool per position, the positions kept in the softmax (context tokens and
    CLS); ``answerable``: bool per position, where a span may start and end (context tokens).
    """
    start = _softmax(np.where(allowed, start_logits, NULL_LOGIT).astype(np.float64))
    end = _softmax(np.where(allowed, end_logits, NULL_LOGIT).astype(np.float64))
    null_score = float(start[0] * end[0])
    positions = np.flatnonzero(answerable)
    if positions.size == 0 or top_k < 1:
        return [], null_score
    # scores[i, j] = p_start(positions[i]) * p_end(positions[j]) for valid (i, j)
    s_pos = positions[:, None]
    e_pos = positions[None, :]
    valid = (e_pos >= s_pos) & (e_pos - s_pos < max_answer_len)
    scores = np.where(valid, start[positions][:, None] * end[positions][None, :], -1.0)
    flat = scores.ravel()
    count = int(valid.sum())
    k = min(top_k, count)
    if k == 0:
        return [], null_score
    if k < flat.size:
        top = np.argpartition(-flat, k - 1)[:k]
    else:
        top = np.arange(flat.size)
    top = top[np.argsort(-flat[top], kind="stable")]
    n = positions.size
    spans = [(int(positions[i // n]), int(positions[i % n]), float(flat[i])) for i in top]
    return spans, null_score


def word_aligned_chars(
    s: int, e: int, offsets: list[tuple[int, int]], words: list[int | None]
) -> tuple[int, int]:
    """Character ``[start, end)`` of a window's context tokens ``s..e`` widened to whole
    words (``offsets`` and ``words`` of the window's context tokens)."""
    start_word, end_word = words[s], words[e]
    if start_word is None or end_word is None:
        return offsets[s][0], offsets[e][1]
    first = s
    while first > 0 and words[first - 1] == start_word:
        first -= 1
    last = e
    while last + 1 < len(words) and words[last + 1] == end_word:
        last += 1
    return offsets[first][0], offsets[last][1]
