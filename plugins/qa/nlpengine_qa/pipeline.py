"""Extractive question answering on the nlpengine runtime.

:class:`QaPipeline` takes ``(question, context)`` pairs and returns the best answer spans
with character offsets into the context. It means the same as transformers'
question-answering pipeline (``pipeline("question-answering")``, transformers 4.x; 5.x has
none) with the same ``top_k``, ``doc_stride``, ``max_answer_len``, ``max_seq_len`` and
``handle_impossible_answer``: the same windows over long contexts
(:mod:`nlpengine_qa.features`), the same span scores, answers widened to whole words and
answers of equal text merged (:mod:`nlpengine_qa.spans`).

Differences: the result is always a list (transformers gives a bare dict for one answer);
a context shared by several questions of a call is tokenized once; the windows of many
questions run in length-sorted batches; questions longer than ``max_question_len`` tokens
are cut to that many tokens (transformers' fast-tokenizer path ignores that option and
fails when the question leaves no room); an empty context gives no answer (or only the
empty one) where transformers raises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from nlpengine_qa.features import (
    ContextTokens,
    PairTemplate,
    Window,
    context_windows,
    keeps_first_space,
)
from nlpengine_qa.spans import (
    best_spans,
    candidates_per_window,
    merge_answers,
    word_aligned_chars,
)

__all__ = ["QaPipeline"]

#: transformers' defaults.
DEFAULT_MAX_SEQ_LEN = 384
DEFAULT_MAX_QUESTION_LEN = 64
DEFAULT_MAX_ANSWER_LEN = 15
# Tokenizers store "no limit" as a huge model_max_length.
_NO_LIMIT = 10**12


class QaPipeline:
    """``(question, context)`` pairs in, answers out.

    ``model``: a model directory with a ``*ForQuestionAnswering`` checkpoint and its
    ``tokenizer.json``, or an already-loaded nlpengine model (its ``tokenizer_directory``
    supplies the tokenizer). ``top_k``: answers per question. ``doc_stride``: context
    tokens shared by consecutive windows (None: ``min(max_seq_len // 2, 128)``).
    ``max_answer_len``: the longest answer in tokens. ``max_seq_len``: tokens per window,
    special tokens included (None: the smallest of 384, the tokenizer's
    ``model_max_length`` and the model's maximum). ``max_question_len``: question tokens
    kept. ``handle_impossible_answer``: offer the empty answer (``start == end == 0``)
    scored by the CLS position.

    Calling it on a list of pairs returns, per pair, a list of ``{"text", "start", "end",
    "score"}`` best first, ``text == context[start:end]``. A pair whose question leaves no
    more than ``doc_stride`` tokens for the context in a window raises ``ValueError``.
    """

    def __init__(
        self,
        model,
        *,
        top_k: int = 1,
        doc_stride: int | None = None,
        max_answer_len: int = DEFAULT_MAX_ANSWER_LEN,
        max_seq_len: int | None = None,
        max_question_len: int = DEFAULT_MAX_QUESTION_LEN,
        handle_impossible_answer: bool = False,
        batch_size: int = 32,
        threads: int | None = None,
    ):
        self.model, self.directory = _resolve_model(model, threads)
        if self.model.head != "question_answering":
            raise ValueError(
                f"{self.directory}: the qa task needs a question-answering model "
                "(*ForQuestionAnswering in config.json architectures), got head "
                f"{self.model.head!r}"
            )
        self.tokenizer, settings = _load_tokenizer(self.directory)
        self.template = PairTemplate.of(self.tokenizer)
        self._keep_first_space = keeps_first_space(self.tokenizer)
        limit = int(self.model.config["max_sequence_length"])
        tok_limit = settings.get("model_max_length")
        if isinstance(tok_limit, int) and not isinstance(tok_limit, bool) and tok_limit > 0:
            if tok_limit < _NO_LIMIT:
                limit = min(limit, tok_limit)
        if max_seq_len is None:
            max_seq_len = min(DEFAULT_MAX_SEQ_LEN, limit)
        _check_int("max_seq_len", max_seq_len, 1)
        if max_seq_len > limit:
            raise ValueError(
                f"max_seq_len {max_seq_len} exceeds the model's maximum of {limit} tokens"
            )
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        _check_int("doc_stride", doc_stride, 0)
        if doc_stride > max_seq_len:
            raise ValueError(
                f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})"
            )
        _check_int("top_k", top_k, 1)
        _check_int("max_answer_len", max_answer_len, 1)
        _check_int("max_question_len", max_question_len, 1)
        _check_int("batch_size", batch_size, 1)
        self.top_k = top_k
        self.doc_stride = doc_stride
        self.max_answer_len = max_answer_len
        self.max_seq_len = max_seq_len
        self.max_question_len = max_question_len
        self.handle_impossible_answer = bool(handle_impossible_answer)
        self.batch_size = batch_size
        cls_token = _token_content(settings.get("cls_token"))
        self._cls_id = None if cls_token is None else self.tokenizer.token_to_id(cls_token)
        config = self.model.config
        self._pad_id = int(config.get("pad_token_id") or 0)
        self._use_types = int(config.get("type_vocab_size") or 0) > 0

    # ------------------------------------------------------------------ public API

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[list[dict]]:
        pairs = list(pairs)
        for i, pair in enumerate(pairs):
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not all(isinstance(x, str) for x in pair)
            ):
                raise TypeError(f"input {i}: expected a (question, context) pair of strings")
        if not pairs:
            return []
        contexts, context_of = self._tokenize_contexts([c for _, c in pairs])
        questions = self._tokenize_questions([q for q, _ in pairs])
        windows = []
        for i, (question, c) in enumerate(zip(questions, context_of, strict=True)):
            windows.extend(self._windows(i, question, contexts[c]))
        logits = self._run(windows)
        per_pair: list[list[int]] = [[] for _ in pairs]
        for w, window in enumerate(windows):
            per_pair[window.example].append(w)
        return [
            self._answers(
                pairs[i][1],
                contexts[context_of[i]],
                [windows[w] for w in ws],
                [logits[w] for w in ws],
            )
            for i, ws in enumerate(per_pair)
        ]

    def __repr__(self) -> str:
        return (
            f"QaPipeline(dir={str(self.directory)!r}, top_k={self.top_k}, doc_stride="
            f"{self.doc_stride}, max_seq_len={self.max_seq_len}, max_answer_len="
            f"{self.max_answer_len}, handle_impossible_answer={self.handle_impossible_answer})"
        )

    # ------------------------------------------------------------------ features

    def _tokenize_contexts(self, texts: list[str]) -> tuple[list[ContextTokens], list[int]]:
        """Each distinct context tokenized once; the index of each input's context."""
        index: dict[str, int] = {}
        context_of = [index.setdefault(text, len(index)) for text in texts]
        encodings = self.tokenizer.encode_batch(list(index), add_special_tokens=False)
        return [ContextTokens.from_encoding(e) for e in encodings], context_of

    def _tokenize_questions(self, texts: list[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [list(e.ids[: self.max_question_len]) for e in encodings]

    def _windows(self, example: int, question: list[int], context: ContextTokens) -> list[Window]:
        capacity = self.max_seq_len - self.template.num_special - len(question)
        if capacity < 1 or (len(context) > capacity and self.doc_stride >= capacity):
            raise ValueError(
                f"input {example}: the question ({len(question)} tokens) leaves {max(capacity, 0)} "
                f"context tokens per window of max_seq_len {self.max_seq_len}, not more than "
                f"doc_stride {self.doc_stride}; shorten the question or lower "
                "--max-question-len / --doc-stride"
            )
        out = []
        for start, end in context_windows(len(context), capacity, self.doc_stride):
            ids, types, at = self.template.build(question, context.ids[start:end])
            out.append(Window(example, start, end, ids, types, at))
        return out

    # ------------------------------------------------------------------ model runs

    def _run(self, windows: list[Window]) -> list[np.ndarray]:
        """(window length, 2) start/end logits per window; batches of similar lengths."""
        order = sorted(range(len(windows)), key=lambda w: -len(windows[w].input_ids))
        out: list[np.ndarray] = [None] * len(windows)  # type: ignore[list-item]
        for i in range(0, len(order), self.batch_size):
            batch = [windows[w] for w in order[i : i + self.batch_size]]
            width = max(len(w.input_ids) for w in batch)
            ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, w in enumerate(batch):
                n = len(w.input_ids)
                ids[row, :n] = w.input_ids
                types[row, :n] = w.type_ids
                mask[row, :n] = 1
            result = self.model.encode(ids, mask, types if self._use_types else None)
            for row, w in enumerate(order[i : i + self.batch_size]):
                out[w] = result.logits[row, : len(windows[w].input_ids)]
        return out

    # ------------------------------------------------------------------ decoding

    def _answers(self, text: str, context: ContextTokens, windows, logits) -> list[dict]:
        answers: list[dict] = []
        null_score = None
        for window, rows in zip(windows, logits, strict=True):
            n = len(window.input_ids)
            answerable = np.zeros(n, dtype=bool)
            answerable[window.context_at : window.context_at + window.end - window.start] = True
            allowed = answerable.copy()
            if self._cls_id is not None:
                allowed |= np.asarray(window.input_ids) == self._cls_id
            spans, null = best_spans(
                rows[:, 0],
                rows[:, 1],
                allowed,
                answerable,
                top_k=candidates_per_window(self.top_k),
                max_answer_len=self.max_answer_len,
            )
            null_score = null if null_score is None else min(null_score, null)
            offsets = context.window_offsets(window.start, window.end, self._keep_first_space)
            words = context.words[window.start : window.end]
            for s, e, score in spans:
                at = window.context_at  # window position -> window context token
                start, end = word_aligned_chars(s - at, e - at, offsets, words)
                merge_answers(answers, text, start, end, score)
        if self.handle_impossible_answer and null_score is not None:
            answers.append({"text": "", "start": 0, "end": 0, "score": null_score})
        answers.sort(key=lambda a: -a["score"])
        return answers[: self.top_k]


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _token_content(value):
    return value.get("content") if isinstance(value, dict) else value


def _resolve_model(model, threads):
    import nlpengine

    if isinstance(model, (str, os.PathLike)):
        loaded = nlpengine.load(model, threads=threads)
        return loaded, Path(loaded.tokenizer_directory)
    if threads is not None:
        raise ValueError("threads applies only when the pipeline loads the model directory")
    directory = getattr(model, "tokenizer_directory", None)
    if directory is None or not hasattr(model, "encode"):
        raise TypeError("model must be a model directory or a loaded nlpengine model")
    return model, Path(directory)


def _load_tokenizer(directory: Path) -> tuple[Tokenizer, dict]:
    """The directory's tokenizer (no truncation, no padding) and its settings from
    special_tokens_map.json / tokenizer_config.json."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the qa pipeline needs the model's tokenizer.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    settings: dict = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = directory / name
        if file.is_file():
            try:
                settings.update(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise ValueError(f"{file}: cannot read: {e}") from e
    if settings.get("cls_token") is None:
        for candidate in ("[CLS]", "<s>"):
            if tokenizer.token_to_id(candidate) is not None:
                settings["cls_token"] = candidate
                break
    return tokenizer, settings
