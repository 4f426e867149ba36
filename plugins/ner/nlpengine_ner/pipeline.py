"""Named-entity recognition on the nlpengine runtime.

:class:`NerPipeline` turns texts into entities with character offsets. It means the same as
the transformers token-classification pipeline
(``transformers.pipeline("token-classification", aggregation_strategy=S)``): the same
tokenization (the directory's ``tokenizer.json`` with its special tokens), a softmax per
token, the same word grouping (``is_subword``), and the same ``none`` / ``simple`` /
``first`` / ``average`` / ``max`` aggregation; results for BIO and IO label sets are
identical to transformers'. Two things go further:

Tag schemes
    transformers only knows ``B-`` and ``I-``: any other label is a bare type that continues
    a run of itself, so a BIOES ``B-PER E-PER`` comes out as two entities. Here the scheme is
    detected from the model's labels (``S-``/``E-`` means BIOES, ``U-``/``L-`` BILOU, ``B-``
    BIO, otherwise IO; see :func:`nlpengine_ner.tags.detect_scheme`) and BIOES/BILOU runs are
    decoded properly: ``I-``/``E-`` continue an entity of the same type, ``E-``/``S-`` close
    it, ``S-`` is an entity on its own. For BIO and IO the grouping is transformers' own.

Long texts
    A text whose tokens do not fit the model's ``max_sequence_length`` (or the tokenizer's
    ``model_max_length``, whichever is smaller) is never truncated: its tokens are cut into
    overlapping windows of ``window = max_length - special tokens`` tokens that share
    ``stride`` tokens with the next window (default ``window // 4``; the last window is
    aligned to the end of the text so it is full). Each window gets the special tokens the
    tokenizer adds, runs through the model, and every token takes its logits from the window
    where it lies farthest from a cut (an edge of the window that is not an edge of the text),
    the earlier window on a tie; so every token sees at least ``stride // 2`` tokens of context
    on each side that has any. Aggregation then runs once over the whole text, so entities may
    cross window boundaries. (transformers' ``stride`` option instead aggregates each chunk
    and then merges overlapping entities, and refuses ``aggregation_strategy="none"``; here
    any strategy works.) Texts that fit run exactly as in transformers.

Blank entities
    Byte-level BPE tokenizers (RoBERTa) make tokens of whitespace, some with empty offsets;
    transformers reports them like any token, so a blank text can yield "entities" made of
    spaces. Entities (and, for ``"none"``, tokens) whose span is empty or only whitespace are
    dropped here; every other result is transformers'.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Container, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from nlpengine.tokenization import casing_type_ids, token_type_scheme
from tokenizers import Tokenizer

from nlpengine_ner.tags import _check_scheme, detect_scheme, split_tag

__all__ = [
    "AGGREGATION_STRATEGIES",
    "NerPipeline",
    "group_entities",
    "merge_window_logits",
    "token_entities",
    "window_spans",
]

#: Valid values of ``aggregation_strategy``.
AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")

# Tokenizers store "no limit" as a huge model_max_length (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 10**12


class NerPipeline:
    """Texts in, entities out.

    ``model``: a model directory (``config.json``, ``model.safetensors``, ``tokenizer.json``
    and optionally ``tokenizer_config.json`` / ``special_tokens_map.json``), an
    already-loaded ``nlpengine`` model (its ``directory`` supplies the tokenizer), or a
    ``(model, directory)`` pair. The model's head must be token classification.

    ``aggregation_strategy``: ``"none"`` (one record per token, label = the full tag such as
    ``B-PER``), ``"simple"``, ``"first"``, ``"average"`` or ``"max"``, as in transformers.
    ``ignore_labels``: entity labels (or, for ``"none"``, token tags) left out of the result;
    None means ``("O",)``.
    ``stride``: tokens shared by consecutive windows of a long text (``0 <= stride <
    window``); None means ``window // 4``.
    ``batch_size``: windows per runtime call; the windows of one call are sorted by length
    so a batch holds windows of similar length.
    ``threads``: intra-op threads when ``model`` is a directory to load (None: every core).
    ``scheme``: ``"IO"``, ``"BIO"``, ``"BIOES"`` or ``"BILOU"``; None detects it from the
    model's labels.

    Calling the pipeline on a list of texts returns, per text, a list of
    ``{"label", "text", "start", "end", "score"}`` records in text order: character offsets
    into the original text (end exclusive), ``text == original[start:end]``, ``score`` a
    float. The pipeline holds no per-call state and may be shared between threads.
    """

    def __init__(
        self,
        model,
        *,
        aggregation_strategy: str = "simple",
        ignore_labels: Sequence[str] | None = ("O",),
        stride: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        scheme: str | None = None,
    ):
        self.model, self.directory = _resolve_model(model, threads)
        if self.model.head != "token_classification":
            raise ValueError(
                f"{self.directory}: the NER pipeline needs a token-classification model "
                f"(*ForTokenClassification in config.json architectures), got head "
                f"{self.model.head!r}"
            )
        strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
        if strategy not in AGGREGATION_STRATEGIES:
            raise ValueError(
                f"aggregation_strategy must be one of {', '.join(AGGREGATION_STRATEGIES)}, "
                f"got {aggregation_strategy!r}"
            )
        self.aggregation_strategy = strategy
        if isinstance(ignore_labels, str):
            ignore_labels = (ignore_labels,)
        self.ignore_labels = frozenset(("O",) if ignore_labels is None else ignore_labels)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size

        self.id2label = dict(self.model.id2label)
        self._labels = tuple(self.id2label[i] for i in range(len(self.id2label)))
        self.scheme = detect_scheme(self._labels) if scheme is None else _check_scheme(scheme)

        self.tokenizer, unk_token, tok_max_length = _load_tokenizer(self.directory)
        self._unk_id = None if unk_token is None else self.tokenizer.token_to_id(unk_token)
        # transformers' word boundaries: exact for tokenizers whose model marks continuation
        # pieces (WordPiece "##"), a whitespace heuristic for the others (byte-level BPE).
        self.word_aware = bool(getattr(self.tokenizer.model, "continuing_subword_prefix", None))
        if strategy in ("first", "average", "max") and not self.word_aware:
            warnings.warn(
                f"{self.directory}: the tokenizer does not mark subwords; words for "
                f"aggregation_strategy={strategy!r} are found with transformers' whitespace "
                "heuristic",
                UserWarning,
                stacklevel=2,
            )

        config = self.model.config
        max_length = int(config["max_sequence_length"])
        if tok_max_length is not None:
            max_length = min(max_length, tok_max_length)
        self.max_length = max_length
        processor = self.tokenizer.post_processor
        num_special = 0 if processor is None else processor.num_special_tokens_to_add(False)
        self.window = max_length - num_special
        if self.window < 1:
            raise ValueError(
                f"{self.directory}: max length {max_length} leaves no room for text next to "
                f"{num_special} special tokens"
            )
        if stride is None:
            stride = self.window // 4
        if (
            isinstance(stride, bool)
            or not isinstance(stride, int)
            or not (0 <= stride < self.window)
        ):
            raise ValueError(
                f"stride must be an integer in [0, {self.window}) for this model "
                f"({self.window} text tokens per window), got {stride!r}"
            )
        self.stride = stride
        self._pad_id = int(config.get("pad_token_id") or 0)
        self._use_types = int(config.get("type_vocab_size") or 0) > 0
        # A model trained with --token-types casing sees each word's capitalisation.
        hf_config = getattr(self.model, "hf_config", None) or {}
        self.casing = token_type_scheme(hf_config, self.directory / "config.json") == "casing"
        if self.casing and not self._use_types:
            raise ValueError(
                f"{self.directory}: config.json asks for casing token types but the model "
                "has no token-type embeddings"
            )

    # ------------------------------------------------------------------ public API

    def __call__(self, texts: Sequence[str]) -> list[list[dict]]:
        if isinstance(texts, str):
            raise TypeError("NerPipeline takes a list of texts; wrap a single text as [text]")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i}: expected a str, got {type(text).__name__}")
        if not texts:
            return []
        docs = self._tokenize(texts)
        self._run(docs)
        return [self._decode(text, doc) for text, doc in zip(texts, docs, strict=True)]

    def __repr__(self) -> str:
        return (
            f"NerPipeline(dir={str(self.directory)!r}, aggregation_strategy="
            f"{self.aggregation_strategy!r}, scheme={self.scheme!r}, max_length="
            f"{self.max_length}, stride={self.stride})"
        )

    # ------------------------------------------------------------------ tokenization

    def _tokenize(self, texts: list[str]) -> list[_Doc]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return [
            _Doc.build(e, i, casing_type_ids(text, e) if self.casing else None)
            for i, (text, e) in enumerate(zip(texts, encodings, strict=True))
        ]

    def window_spans(self, num_tokens: int) -> list[tuple[int, int]]:
        """``(start, end)`` token ranges of the windows covering ``num_tokens`` text tokens."""
        return window_spans(num_tokens, self.window, self.stride)

    # ------------------------------------------------------------------ model runs

    def _run(self, docs: list[_Doc]) -> None:
        jobs = []  # (doc, window index, start, end)
        for doc in docs:
            if doc.num_tokens == 0:
                continue
            if doc.num_special != self.max_length - self.window:
                raise RuntimeError(
                    f"text {doc.index}: the tokenizer added {doc.num_special} special tokens, "
                    f"expected {self.max_length - self.window}"
                )
            doc.windows = self.window_spans(doc.num_tokens)
            doc.window_scores = [None] * len(doc.windows)
            for k, (a, b) in enumerate(doc.windows):
                jobs.append((doc, k, a, b))
        # Longest first: the padded width of each batch is set by its first window.
        jobs.sort(key=lambda job: -(job[3] - job[2] + job[0].num_special))
        for i in range(0, len(jobs), self.batch_size):
            batch = jobs[i : i + self.batch_size]
            rows = [job[0].window_inputs(job[2], job[3]) for job in batch]
            width = max(len(ids) for ids, _ in rows)
            input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, (ids, type_ids) in enumerate(rows):
                input_ids[r, : len(ids)] = ids
                mask[r, : len(ids)] = 1
                types[r, : len(ids)] = type_ids
            out = self.model.encode(
                input_ids, attention_mask=mask, token_type_ids=types if self._use_types else None
            )
            # The softmax per token, each token's best label and its score, for the whole
            # batch at once (transformers' arithmetic: float32, the row's maximum
            # subtracted). A long text's windows are merged after it, which picks rows and
            # so commutes with it.
            logits = np.asarray(out.logits, dtype=np.float32)
            shifted_exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
            best, best_scores = scores.argmax(axis=-1), scores.max(axis=-1)
            for r, (doc, k, a, b) in enumerate(batch):
                rows = slice(doc.prefix_len, doc.prefix_len + (b - a))
                doc.window_scores[k] = scores[r, rows]
                if len(doc.windows) == 1:
                    doc.best = (best[r, rows], best_scores[r, rows])

    # ------------------------------------------------------------------ decoding

    def _decode(self, text: str, doc: _Doc) -> list[dict]:
        if doc.num_tokens == 0:
            return []
        scores = merge_window_logits(doc.windows, doc.window_scores, doc.num_tokens)
        strategy = self.aggregation_strategy
        if strategy in ("none", "simple"):
            groups = self._token_groups(doc, scores, strategy == "none")
        else:
            words = self._aggregate_words(self._pre_entities(text, doc, scores), scores)
            # Runs of ignored types (mostly ``O``) are dropped before they are scored.
            groups = group_entities(words, self.scheme, skip=self.ignore_labels)
        return [
            {
                "label": label,
                "text": text[start:end],
                "start": int(start),
                "end": int(end),
                "score": float(score),
            }
            for label, score, start, end in groups
            if label not in self.ignore_labels and not text[start:end].isspace() and end > start
        ]

    def _token_groups(self, doc: _Doc, scores: np.ndarray, per_token: bool) -> list[tuple]:
        """:func:`token_entities` of a text, each token labelled by its best score."""
        if doc.best is None:  # windows merged: the best labels of the merged rows
            doc.best = (scores.argmax(axis=-1), scores.max(axis=-1))
        best, best_scores = doc.best
        return token_entities(
            best.tolist(),
            best_scores,
            doc.offsets,
            doc.special,
            self._labels,
            self.scheme,
            self.ignore_labels,
            per_token=per_token,
        )

    def _pre_entities(self, text: str, doc: _Doc, scores: np.ndarray) -> list[tuple]:
        """``(token index, start, end, is_subword)`` of every non-special text token."""
        pre = []
        tokens = doc.tokens() if self.word_aware else None
        for j in range(doc.num_tokens):
            if doc.special[j]:
                continue
            start, end = doc.offsets[j]
            if tokens is not None:
                is_subword = len(tokens[j]) != end - start
            else:
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if self._unk_id is not None and doc.ids[j] == self._unk_id:
                is_subword = False
            pre.append((j, start, end, is_subword))
        return pre

    def _aggregate_words(self, pre: list[tuple], scores: np.ndarray) -> list[tuple]:
        """One ``(label, score, start, end)`` per word (transformers' ``aggregate_words``)."""
        words, group = [], []
        for item in pre:
            if group and not item[3]:
                words.append(self._aggregate_word(group, scores))
                group = []
            group.append(item)
        if group:
            words.append(self._aggregate_word(group, scores))
        return words

    def _aggregate_word(self, group: list[tuple], scores: np.ndarray) -> tuple:
        strategy = self.aggregation_strategy
        if strategy == "first":
            token_scores = scores[group[0][0]]
        elif strategy == "max":
            # max() keeps the first of equal maxima, as transformers does.
            token_scores = scores[max((item[0] for item in group), key=lambda j: scores[j].max())]
        else:  # average
            token_scores = np.nanmean(np.stack([scores[item[0]] for item in group]), axis=0)
        idx = int(token_scores.argmax())
        return self._labels[idx], token_scores[idx], group[0][1], group[-1][2]


def group_entities(
    tokens: Sequence[tuple], scheme: str = "BIO", skip: Container[str] = ()
) -> list[tuple]:
    """Join adjacent tokens (or words) into entities.

    ``tokens``: ``(label, score, start, end)`` in text order. Returns ``(type, score, start,
    end)`` per run, ``score`` the mean of the run's scores. For BIO and IO this is
    transformers' ``group_entities``: a token continues the run before it when its type
    matches and its prefix is not ``B-`` (a bare label such as ``O`` counts as ``I-``), and
    the run's type is its first label after the first ``-``. For BIOES/BILOU a token also
    starts a new run after an ``E-``/``S-`` (``L-``/``U-``) token and ``S-``/``U-`` never
    continues one; the run's type is its first label without the prefix. Runs whose type is
    in ``skip`` are left out (and not scored).
    """
    scheme = _check_scheme(scheme)
    bioes = scheme in ("BIOES", "BILOU")
    groups, run = [], []
    last_prefix = last_type = None
    for token in tokens:
        prefix, kind = split_tag(token[0], scheme)
        joins = run and kind == last_type and prefix not in ("B", "S")
        if joins and not (bioes and last_prefix in ("E", "S")):
            run.append(token)
        else:
            if run:
                groups.append(_group_run(run, scheme, bioes, skip))
            run = [token]
            last_type = kind
        last_prefix = prefix
    if run:
        groups.append(_group_run(run, scheme, bioes, skip))
    return [group for group in groups if group is not None]


def token_entities(
    label_ids: Sequence[int],
    scores: Sequence[float],
    offsets: Sequence[tuple[int, int]],
    special: Sequence[int],
    labels: Sequence[str],
    scheme: str = "BIO",
    skip: frozenset[str] = frozenset(("O",)),
    *,
    per_token: bool = False,
) -> list[tuple]:
    """``(label, score, start, end)`` of the entities aggregation strategy ``"simple"``
    makes of tokens labelled ``labels[label_ids[j]]`` with ``scores[j]``: what
    :func:`group_entities` gives for the tokens that are not ``special``, runs of a type in
    ``skip`` left out. ``per_token`` (strategy ``"none"``): every such token whose tag is
    not in ``skip``, ungrouped.

    Only the runs that can be reported are built: a token whose label can only start a run
    that is left out (``O``, mostly: :func:`_run_breaking_labels`) ends the run before it
    and costs nothing more, so a text's ``O`` tokens cost one test each. With the softmax
    and best labels taken per batch (``NerPipeline._run``), the Python work around the
    model of a 16,000-sentence job (the default model's data, 26 tokens a sentence) went
    from 97 to 46 us a sentence, 251 to 188 with reading, tokenizing and writing.
    """
    scheme = _check_scheme(scheme)
    breaking = _run_breaking_labels(tuple(labels), scheme, frozenset(skip), per_token)
    groups, run = [], []
    for j, label_id in enumerate(label_ids):
        if special[j]:
            continue
        if breaking[label_id]:
            if run:
                groups.extend(run if per_token else group_entities(run, scheme, skip))
                run = []
            continue
        run.append((labels[label_id], scores[j], *offsets[j]))
    if run:
        groups.extend(run if per_token else group_entities(run, scheme, skip))
    return groups


@lru_cache(maxsize=64)
def _run_breaking_labels(
    labels: tuple[str, ...], scheme: str, skip: frozenset[str], per_token: bool
) -> tuple[bool, ...]:
    """Per label id, whether a token so labelled only ends the run before it: what
    :func:`group_entities` makes of it is left out (``skip``), whatever its neighbours.

    A run holds tokens of one type (``split_tag``) and is left out when its label (the type
    under BIOES/BILOU, else its first tag after the first ``-``) is in ``skip``; so the
    tokens of a type whose every tag gives a skipped label never reach the result, and the
    next token starts a run of its own. Per token (``aggregation_strategy="none"``), the
    tags in ``skip``.
    """
    if per_token:
        return tuple(label in skip for label in labels)
    bioes = scheme in ("BIOES", "BILOU")
    kinds = [split_tag(label, scheme)[1] for label in labels]
    reported = {
        kind
        for kind, label in zip(kinds, labels, strict=True)
        if (kind if bioes else label.split("-", 1)[-1]) not in skip
    }
    return tuple(kind not in reported for kind in kinds)


def _group_run(run: list[tuple], scheme: str, bioes: bool, skip: Container[str]) -> tuple | None:
    first = run[0][0]
    label = split_tag(first, scheme)[1] if bioes else first.split("-", 1)[-1]
    if label in skip:
        return None
    # A run of one token keeps its score as it is (what nanmean gives, without its cost:
    # 40 us a call, 1.3 s of a 4,000-review NER job's 29,000 runs).
    score = run[0][1] if len(run) == 1 else np.nanmean([token[1] for token in run])
    return label, score, run[0][2], run[-1][3]


# ---------------------------------------------------------------------- helpers


class _Doc:
    """One text's tokens: the text tokens of the full encoding plus the special tokens the
    tokenizer puts before (``prefix``) and after (``suffix``) them."""

    __slots__ = (
        "encoding",
        "ids",
        "type_ids",
        "offsets",
        "special",
        "prefix",
        "suffix",
        "prefix_len",
        "num_special",
        "num_tokens",
        "index",
        "windows",
        "window_scores",
        "best",
    )

    @classmethod
    def build(cls, full, index: int, type_ids: list[int] | None = None) -> _Doc:
        """``full``: the text's encoding with special tokens, whose sequence ids tell the
        text's tokens (0) from those the post-processor added (None); a literal special
        token typed in the text counts as text. ``type_ids`` replaces the tokenizer's type
        ids (casing types). (Found before by encoding each text again without special
        tokens and matching the two: a third of the job's tokenization time.)"""
        ids = full.ids
        sequence_ids = full.sequence_ids
        n = sequence_ids.count(0)
        extra = len(ids) - n
        p = sequence_ids.index(0) if n else 0
        if 0 in sequence_ids[p + n :]:  # the n text tokens are not those from p on
            raise RuntimeError(
                f"text {index}: the tokenizer's special tokens do not wrap the text's tokens "
                "(unsupported post-processor)"
            )
        doc = cls()
        doc.encoding = full
        doc.ids = ids[p : p + n]
        types = full.type_ids if type_ids is None else type_ids
        doc.type_ids = types
        doc.offsets = full.offsets[p : p + n]
        doc.special = full.special_tokens_mask[p : p + n]
        doc.prefix = (ids[:p], types[:p])
        doc.suffix = (ids[p + n :], types[p + n :])
        doc.prefix_len = p
        doc.num_special = extra
        doc.num_tokens = n
        doc.index = index
        doc.windows = []
        doc.window_scores = []
        doc.best = None  # (label ids, their scores) of a text that fits one window
        return doc

    def tokens(self) -> list[str]:
        """The text tokens' strings (read from the encoding when asked: only word
        aggregation needs them)."""
        p = self.prefix_len
        return self.encoding.tokens[p : p + self.num_tokens]

    def window_inputs(self, start: int, end: int) -> tuple[list[int], list[int]]:
        p = self.prefix_len
        ids = self.prefix[0] + self.ids[start:end] + self.suffix[0]
        types = self.prefix[1] + self.type_ids[p + start : p + end] + self.suffix[1]
        return ids, types


def window_spans(num_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of overlapping windows covering ``num_tokens`` tokens.

    Windows hold ``window`` tokens and start ``window - stride`` apart; the last one ends at
    the last token (it may overlap its neighbour by more than ``stride``). A sequence that fits
    is one window.
    """
    if window < 1 or not 0 <= stride < window:
        raise ValueError(f"need window >= 1 and 0 <= stride < window, got {window}, {stride}")
    if num_tokens <= window:
        return [(0, num_tokens)]
    step = window - stride
    starts = list(range(0, num_tokens - window, step)) + [num_tokens - window]
    return [(s, s + window) for s in starts]


def merge_window_logits(
    windows: Sequence[tuple[int, int]], window_logits: Sequence[np.ndarray], num_tokens: int
) -> np.ndarray:
    """Per-token rows of ``(num_tokens, num_labels)`` from overlapping windows (logits or
    the scores the pipeline makes of them: rows are picked, not combined).

    Each token takes the row of the window where it is farthest from a cut, i.e. from an
    edge of the window that is not an edge of the whole sequence; the earlier window wins a
    tie.
    """
    if len(windows) == 1:
        return np.asarray(window_logits[0])
    num_labels = np.asarray(window_logits[0]).shape[-1]
    merged = np.zeros((num_tokens, num_labels), dtype=np.float32)
    best = np.full(num_tokens, -1, dtype=np.int64)
    positions = np.arange(num_tokens)
    for (a, b), rows in zip(windows, window_logits, strict=True):
        pos = positions[a:b]
        left = pos - a if a > 0 else np.full(b - a, num_tokens)
        right = (b - 1) - pos if b < num_tokens else np.full(b - a, num_tokens)
        distance = np.minimum(left, right)
        better = distance > best[a:b]
        best[a:b][better] = distance[better]
        merged[a:b][better] = np.asarray(rows)[better]
    return merged


def _resolve_model(model, threads):
    import nlpengine

    if isinstance(model, (str, os.PathLike)):
        loaded = nlpengine.load(model, threads=threads)
        # An adapter directory without tokenizer files uses its base model's tokenizer.
        return loaded, Path(loaded.tokenizer_directory)
    if threads is not None:
        raise ValueError("threads applies only when the pipeline loads the model directory")
    if isinstance(model, tuple) and len(model) == 2:
        loaded, directory = model
        return loaded, Path(directory)
    directory = getattr(model, "tokenizer_directory", None) or getattr(model, "directory", None)
    if directory is None or not hasattr(model, "encode"):
        raise TypeError(
            "model must be a model directory, a loaded nlpengine model, or (model, directory)"
        )
    return model, Path(directory)


def _load_tokenizer(directory: Path) -> tuple[Tokenizer, str | None, int | None]:
    """The directory's tokenizer (no truncation, no padding), its unknown token and the
    ``model_max_length`` of tokenizer_config.json (None when absent or unlimited)."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the NER pipeline needs the model's tokenizer.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    settings = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = directory / name
        if file.is_file():
            try:
                settings.update(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise ValueError(f"{file}: cannot read: {e}") from e
    unk = settings.get("unk_token")
    if isinstance(unk, dict):
        unk = unk.get("content")
    if unk is None:
        unk = getattr(tokenizer.model, "unk_token", None)
    max_length = settings.get("model_max_length")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length <= 0:
        max_length = None
    elif max_length >= _NO_LIMIT:
        max_length = None
    return tokenizer, unk, max_length
