"""Text classification on the nlpengine runtime: texts (or text pairs) in, labels with scores out.

The semantics are those of transformers' ``pipeline("text-classification", top_k=...)``:
the same default score function (from ``problem_type`` and ``num_labels``), the same
label order (score descending, ties in label-index order) and the same pair encoding
(the tokenizer's pair template, token type ids where the model has them).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nlpengine
import numpy as np
from nlpengine.errors import ModelError
from nlpengine.tokenization import load_tokenizer
from tokenizers import Encoding, Tokenizer

__all__ = ["ClassificationPipeline"]

_FUNCTIONS = ("sigmoid", "softmax", "none")

#: transformers writes this huge value as model_max_length when a tokenizer has no limit.
_NO_TOKENIZER_LIMIT = 10**9


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The tanh form equals 1 / (1 + exp(-x)) without overflowing for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def default_function_to_apply(hf_config: dict, num_labels: int) -> str:
    """The score function transformers' text-classification pipeline picks by default.

    regression -> "none"; multi-label or a single label -> "sigmoid";
    single-label or several labels -> "softmax".
    """
    problem_type = hf_config.get("problem_type")
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    if problem_type == "single_label_classification" or num_labels > 1:
        return "softmax"
    function = hf_config.get("function_to_apply")
    if isinstance(function, str) and function.lower() in _FUNCTIONS:
        return function.lower()
    return "none"


def _tokenizer_config(model_dir: Path) -> dict:
    path = model_dir / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read tokenizer config: {e}") from e


class ClassificationPipeline:
    """Sequence classification with a ``*ForSequenceClassification`` model directory.

    >>> clf = ClassificationPipeline("path/to/sst2-model", top_k=None)
    >>> clf(["a fine film", {"text": "is it good?", "text_pair": "yes"}])
    [[{'label': 'positive', 'score': 0.98}, {'label': 'negative', 'score': 0.02}], [...]]

    ``model``: a model directory (config.json, model.safetensors, tokenizer.json) or a
    model returned by ``nlpengine.load`` (its directory supplies the tokenizer).
    ``top_k``: how many labels to return per input, best first; None returns all.
    ``function_to_apply``: "softmax", "sigmoid" or "none"; None picks it from config.json
    as transformers does: sigmoid for ``problem_type`` "multi_label_classification" or a
    single output, softmax for several labels, none for "regression".
    ``batch_size``: inputs per runtime call; inputs of similar length are batched together.
    ``threads``: intra-op threads when ``model`` is a directory (None uses every core).
    ``truncation``: cut inputs longer than the model's maximum length (the longest of a
    pair first) and warn once per call with the indices cut; False raises a ValueError
    naming the input instead.

    One difference from transformers' pipeline: a pair with an empty ``text_pair`` ("")
    is encoded with the pair template, as transformers' batched tokenizer call (the usual
    training path) does; its pipeline tokenizes one input at a time and drops it. A
    ``text_pair`` of None means a single text.
    Every input of a call is tokenized before the first batch runs: callers streaming a
    large file should call with chunks of it.
    """

    def __init__(
        self,
        model: str | os.PathLike | nlpengine.EncoderModel,
        *,
        top_k: int | None = 1,
        function_to_apply: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        truncation: bool = True,
    ):
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
        ):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if function_to_apply is not None:
            if not isinstance(function_to_apply, str) or function_to_apply.lower() not in (
                _FUNCTIONS
            ):
                raise ValueError(
                    f"function_to_apply must be one of {', '.join(_FUNCTIONS)} or None, "
                    f"got {function_to_apply!r}"
                )
            function_to_apply = function_to_apply.lower()

        if isinstance(model, (str, os.PathLike)):
            model = nlpengine.load(model, threads=threads)
        elif threads is not None:
            raise ValueError(
                "threads applies only when the model is given as a directory; "
                "pass threads to nlpengine.load instead"
            )
        if model.head != "sequence_classification":
            raise ModelError(
                f"{Path(model.directory) / 'config.json'}: text classification needs a "
                f"*ForSequenceClassification architecture, the model has head {model.head!r}"
            )

        self.model = model
        self.top_k = top_k
        self.batch_size = batch_size
        self.truncation = bool(truncation)
        self.num_labels = int(model.config["num_labels"])
        id2label = model.id2label
        self.labels = [id2label[i] for i in range(self.num_labels)]
        self.function_to_apply = function_to_apply or default_function_to_apply(
            model.hf_config, self.num_labels
        )

        model_dir = Path(getattr(model, "tokenizer_directory", None) or model.directory)
        tok_config = _tokenizer_config(model_dir)
        self.max_length = int(model.config["max_sequence_length"])
        limit = tok_config.get("model_max_length")
        if isinstance(limit, (int, float)) and 0 < limit < _NO_TOKENIZER_LIMIT:
            self.max_length = min(self.max_length, int(limit))
        side = tok_config.get("truncation_side", "right")
        tokenizer = load_tokenizer(model_dir)
        self._pad_id = int(tokenizer.padding["pad_id"]) if tokenizer.padding else 0
        # Padding is done per length-sorted batch below, so the tokenizer only truncates.
        tokenizer.no_padding()
        tokenizer.enable_truncation(
            max_length=self.max_length, direction=side if side in ("left", "right") else "right"
        )
        self.tokenizer: Tokenizer = tokenizer
        # Token types reach the model only where it has more than one: DistilBERT has none,
        # RoBERTa a single one (a pair template emitting type 1 would be out of range).
        self._use_token_types = int(model.config.get("type_vocab_size", 0)) >= 2

    # -- inputs ---------------------------------------------------------------------------

    @staticmethod
    def _normalize(index: int, item: Any) -> str | tuple[str, str]:
        """One input as a text or a (text, text_pair) tuple."""
        text_pair = None
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise ValueError(
                    f"input {index}: a dict input needs a 'text' key and may have "
                    f"'text_pair', got keys {sorted(item)}"
                )
            text, text_pair = item["text"], item.get("text_pair")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            text, text_pair = item
        else:
            raise TypeError(
                f"input {index}: expected a str, a (text, text_pair) tuple or a dict with "
                f"'text' and 'text_pair', got {type(item).__name__}"
            )
        if not isinstance(text, str) or not (text_pair is None or isinstance(text_pair, str)):
            raise TypeError(f"input {index}: text and text_pair must be strings")
        return text if text_pair is None else (text, text_pair)

    def _encode(self, items: list[str | tuple[str, str]]) -> list[Encoding]:
        encodings: list[Encoding | None] = [None] * len(items)
        # Singles and pairs go through encode_batch separately: it takes one kind at a time.
        for want_pair in (False, True):
            idx = [i for i, it in enumerate(items) if isinstance(it, tuple) == want_pair]
            if idx:
                batch = self.tokenizer.encode_batch([items[i] for i in idx])
                for i, enc in zip(idx, batch, strict=True):
                    encodings[i] = enc
        return encodings  # type: ignore[return-value]

    def _check_lengths(self, encodings: list[Encoding], stacklevel: int) -> None:
        truncated = [i for i, enc in enumerate(encodings) if enc.overflowing]
        if not truncated:
            return
        shown = ", ".join(map(str, truncated[:20])) + (" ..." if len(truncated) > 20 else "")
        if not self.truncation:
            raise ValueError(
                f"input {shown}: longer than the model's maximum of {self.max_length} tokens "
                "(use truncation=True to cut it)"
            )
        warnings.warn(
            f"{len(truncated)} input(s) longer than {self.max_length} tokens were truncated "
            f"(input index {shown})",
            UserWarning,
            stacklevel=stacklevel,
        )

    # -- running ---------------------------------------------------------------------------

    def _batch_arrays(self, batch: list[Encoding]):
        seq = max(len(enc.ids) for enc in batch)
        ids = np.full((len(batch), seq), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), seq), dtype=np.int64)
        types = np.zeros((len(batch), seq), dtype=np.int64) if self._use_token_types else None
        for row, enc in enumerate(batch):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            if types is not None:
                types[row, :n] = enc.type_ids
        return ids, mask, types

    def logits(self, inputs: Iterable[Any]) -> np.ndarray:
        """Raw logits, float32 (len(inputs), num_labels), in input order."""
        return self._logits(inputs, stacklevel=3)

    def _logits(self, inputs: Iterable[Any], stacklevel: int) -> np.ndarray:
        # stacklevel: frames from here up to the user's call, for the truncation warning.
        items = [self._normalize(i, item) for i, item in enumerate(inputs)]
        out = np.zeros((len(items), self.num_labels), dtype=np.float32)
        if not items:
            return out
        encodings = self._encode(items)
        self._check_lengths(encodings, stacklevel + 1)
        # Length-sorted batches waste little on padding; results go back by index.
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask, types = self._batch_arrays([encodings[i] for i in rows])
            result = self.model.encode(ids, attention_mask=mask, token_type_ids=types)
            out[rows] = result.logits
        return out

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Logits turned into scores with the pipeline's function_to_apply."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.function_to_apply == "softmax":
            return _softmax(logits)
        if self.function_to_apply == "sigmoid":
            return _sigmoid(logits)
        return logits

    def __call__(self, inputs: Sequence[Any] | str | dict) -> list[list[dict]]:
        """Classify a list of inputs: each a str, a (text, text_pair) tuple, or a dict
        {"text": ..., "text_pair": ...}. A single str or dict counts as a list of one.

        Returns, per input, up to ``top_k`` ``{"label", "score"}`` dicts, best first."""
        if isinstance(inputs, (str, dict)):
            inputs = [inputs]
        scores = self.scores(self._logits(inputs, stacklevel=3))
        k = self.num_labels if self.top_k is None else min(self.top_k, self.num_labels)
        results = []
        for row in scores:
            # Stable sort on -score: ties keep label-index order, as in transformers.
            ranked = np.argsort(-row, kind="stable")[:k]
            results.append([{"label": self.labels[j], "score": float(row[j])} for j in ranked])
        return results

    def __repr__(self) -> str:
        return (
            f"ClassificationPipeline({self.model.directory!r}, labels={self.labels}, "
            f"top_k={self.top_k}, function_to_apply={self.function_to_apply!r})"
        )
