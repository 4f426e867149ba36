"""Summarization on the nlpengine runtime: texts in, generated summaries with scores out.

The model is an encoder-decoder directory (bart, t5, marian) that ``nlpengine.load``
returns as a ``Seq2SeqModel``; generation runs in the runtime with transformers' option
names and meanings, defaulting to the directory's generation_config.json.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nlpengine
import numpy as np
from nlpengine.errors import ModelError
from nlpengine.tokenization import load_tokenizer
from tokenizers import Encoding, Tokenizer

__all__ = ["GENERATION_OPTIONS", "SummarizationPipeline", "source_limit"]

#: Generation options passed through to ``model.generate`` (transformers' names).
GENERATION_OPTIONS = (
    "num_beams",
    "max_new_tokens",
    "min_new_tokens",
    "max_length",
    "min_length",
    "length_penalty",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "early_stopping",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
)
#: Longest source T5 takes by default: relative positions set no limit, and 512 is what
#: its tokenizers (model_max_length) and pre-training used.
T5_SOURCE_LIMIT = 512
#: Keys of config.json's task_specific_params["summarization"] that are generation
#: defaults (what transformers' summarization pipeline applied).
_TASK_PARAM_KEYS = frozenset(GENERATION_OPTIONS) - {"seed"}

# transformers' clean_up_tokenization (decode with clean_up_tokenization_spaces=True).
_CLEANUPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def source_limit(hf_config: dict, max_source_length: int | None = None) -> int:
    """Source tokens kept: ``max_source_length`` when given, else max_position_embeddings
    (bart, marian), else 512 for T5's relative positions."""
    if max_source_length is not None:
        if isinstance(max_source_length, bool) or int(max_source_length) < 1:
            raise ValueError(f"max_source_length must be positive, got {max_source_length!r}")
        limit = int(max_source_length)
        table = hf_config.get("max_position_embeddings")
        if hf_config.get("model_type") != "t5" and isinstance(table, int) and limit > table:
            raise ValueError(
                f"max_source_length {limit} exceeds the model's max_position_embeddings {table}"
            )
        return limit
    if hf_config.get("model_type") == "t5":
        return T5_SOURCE_LIMIT
    table = hf_config.get("max_position_embeddings")
    if not isinstance(table, int) or table < 1:
        raise ModelError("config.json: max_position_embeddings is missing")
    return table


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read: {e}") from e
    return data if isinstance(data, dict) else {}


def _clean_up(text: str) -> str:
    for old, new in _CLEANUPS:
        text = text.replace(old, new)
    return text


class SummarizationPipeline:
    """Abstractive summaries from a bart / t5 / marian model directory.

    >>> summarize = SummarizationPipeline("path/to/bart-cnn", num_beams=4, max_new_tokens=60)
    >>> summarize(["A long article ..."])
    [{'summary': 'A short summary.', 'score': -0.61}]

    ``model``: a model directory (config.json, model.safetensors, tokenizer.json) or a
    model from ``nlpengine.load``. Generation options (``num_beams``, ``max_new_tokens``,
    ``length_penalty``, ``no_repeat_ngram_size``, ``do_sample``, ``top_p``, ``seed``, ...)
    mean what they mean in transformers; None leaves the model's default: its
    generation_config.json, then config.json's ``task_specific_params["summarization"]``.
    A ``prefix`` from config.json (or from those task parameters: T5's ``"summarize: "``)
    is put before every text. ``score`` is the beam's length-penalised log-probability
    for beam search, the sum of the chosen tokens' log-probabilities otherwise.

    A source longer than ``max_source_length`` tokens (default: the model's position
    table; 512 for T5) is cut to it with a warning naming the input.
    """

    #: ``__call__`` takes ``sources=`` (names of the inputs for the truncation warning).
    accepts_sources = True

    def __init__(
        self,
        model: str | os.PathLike | Any,
        *,
        batch_size: int = 8,
        threads: int | None = None,
        max_source_length: int | None = None,
        **generation: Any,
    ):
        unknown = sorted(set(generation) - set(GENERATION_OPTIONS))
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(unknown)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(model, (str, os.PathLike)):
            model = nlpengine.load(model, threads=threads)
        elif threads is not None:
            raise ValueError(
                "threads applies only when the model is given as a directory; "
                "pass threads to nlpengine.load instead"
            )
        directory = Path(model.directory)
        if not callable(getattr(model, "generate", None)):
            raise ModelError(
                f"{directory / 'config.json'}: summarization needs an encoder-decoder model "
                "(bart, t5, marian)"
            )
        self.model = model
        self.batch_size = batch_size
        hf_config = model.hf_config
        task_params = (hf_config.get("task_specific_params") or {}).get("summarization") or {}
        self.prefix = hf_config.get("prefix") or task_params.get("prefix") or ""
        defaults = {k: v for k, v in task_params.items() if k in _TASK_PARAM_KEYS}
        given = {k: v for k, v in generation.items() if v is not None}
        if any(k in given for k in ("max_new_tokens", "max_length")):
            defaults.pop("max_length", None)
            defaults.pop("max_new_tokens", None)
        if any(k in given for k in ("min_new_tokens", "min_length")):
            defaults.pop("min_length", None)
            defaults.pop("min_new_tokens", None)
        self.generation = {**defaults, **given}
        self.max_length = source_limit(hf_config, max_source_length)

        tokenizer_dir = Path(getattr(model, "tokenizer_directory", None) or directory)
        tokenizer: Tokenizer = load_tokenizer(tokenizer_dir)
        tok_config = _read_json(tokenizer_dir / "tokenizer_config.json")
        self.clean_up_spaces = bool(tok_config.get("clean_up_tokenization_spaces", False))
        pad = hf_config.get("pad_token_id")
        if pad is None:
            pad = tokenizer.padding["pad_id"] if tokenizer.padding else 0
        self._pad_id = int(pad)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer = tokenizer

    # -- running -----------------------------------------------------------------------

    def _encode(self, texts: list[str], sources: Sequence[str]) -> list[Encoding]:
        encodings = self.tokenizer.encode_batch([self.prefix + t for t in texts])
        for source, encoding in zip(sources, encodings, strict=True):
            if encoding.overflowing:
                kept = len(encoding.ids)
                dropped = sum(len(o.ids) for o in encoding.overflowing)
                warnings.warn(
                    f"{source}: text truncated to the first {kept} of about {kept + dropped} "
                    f"tokens (the model's maximum source length is {self.max_length}; "
                    "--max-source-length changes it)",
                    UserWarning,
                    stacklevel=4,
                )
        return encodings

    def _batch(self, encodings: list[Encoding]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
        return ids, mask

    def decode(self, sequence: Sequence[int]) -> str:
        text = self.tokenizer.decode([int(t) for t in sequence], skip_special_tokens=True)
        if self.clean_up_spaces:
            text = _clean_up(text)
        return text.strip()

    def __call__(
        self, inputs: Sequence[str] | str, sources: Sequence[str] | None = None
    ) -> list[dict]:
        """Summaries of ``inputs`` (texts), in order: ``{"summary", "score"}`` each.

        ``sources`` names each input in the truncation warning (default "input N")."""
        if isinstance(inputs, str):
            inputs = [inputs]
        texts = list(inputs)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"input {i}: expected a str, got {type(text).__name__}")
        if sources is None:
            sources = [f"input {i}" for i in range(len(texts))]
        elif len(sources) != len(texts):
            raise ValueError(f"{len(sources)} sources for {len(texts)} inputs")
        if not texts:
            return []
        encodings = self._encode(texts, sources)
        results: list[dict | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask = self._batch([encodings[i] for i in rows])
            out = self.model.generate(ids, attention_mask=mask, **self.generation)
            sequences = np.asarray(out.sequences)
            scores = np.asarray(out.scores)
            if sequences.shape[0] != len(rows):
                raise RuntimeError(
                    f"generate returned {sequences.shape[0]} sequences for {len(rows)} inputs"
                )
            for k, i in enumerate(rows):
                results[i] = {"summary": self.decode(sequences[k]), "score": float(scores[k])}
        return results  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"SummarizationPipeline({self.model.directory!r}, max_source_length="
            f"{self.max_length}, generation={self.generation})"
        )
