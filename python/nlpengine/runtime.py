"""The runtime facade: loading model directories and running them.

Arrays cross into C++ without copies when they are already C-contiguous int64;
the GIL is released while the runtime computes, so Python threads can run
several calls at once on one shared model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from nlpengine import _core

__all__ = ["EncoderModel", "EncoderOutput", "load"]


@dataclass(frozen=True)
class EncoderOutput:
    """What an encoder returns for a batch.

    ``last_hidden_state``: float32 (batch, seq, hidden); positions whose attention
    mask is 0 are zeros. ``pooler_output``: float32 (batch, hidden), or None when the
    checkpoint has no pooler (DistilBERT, ELECTRA, task checkpoints without one).
    ``logits``: the task head's output, or None for a bare encoder: float32
    (batch, seq, num_labels) for token classification (zeros where the mask is 0),
    (batch, num_labels) for sequence classification.
    """

    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    logits: np.ndarray | None = None


def _as_ids(name: str, array, reference_shape=None) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
        a = np.ascontiguousarray(a, dtype=np.int64)
    else:
        raise _core.InvalidInputError(f"{name}: expected an integer array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise _core.InvalidInputError(
            f"{name}: expected shape (batch, seq), got an array of shape {a.shape}"
        )
    if reference_shape is not None and a.shape != reference_shape:
        raise _core.InvalidInputError(
            f"{name}: shape {a.shape} differs from input_ids shape {reference_shape}"
        )
    return a


class EncoderModel:
    """A BERT-family encoder (bert, roberta, xlm-roberta, distilbert, electra) loaded
    from a Hugging Face model directory. Immutable and safe to share between threads."""

    def __init__(self, native: _core.EncoderModel):
        self._native = native
        with open(os.path.join(native.directory, "config.json"), encoding="utf-8") as f:
            self._hf_config = json.load(f)

    @property
    def hf_config(self) -> dict:
        """config.json as a dict (id2label, problem_type, ... for the task adapters)."""
        return self._hf_config

    @property
    def id2label(self) -> dict[int, str]:
        """Label names by class index, from config.json (LABEL_i when absent)."""
        names = self._hf_config.get("id2label") or {}
        return {i: names.get(str(i), f"LABEL_{i}") for i in range(self._native.info["num_labels"])}

    @property
    def config(self) -> dict:
        """Model type and sizes as read from config.json."""
        return dict(self._native.info)

    @property
    def head(self) -> str | None:
        """The runtime head config.json's "architectures" selects:
        "sequence_classification", "token_classification", or None for a bare encoder."""
        head = self._native.info["head"]
        return None if head == "none" else head

    @property
    def threads(self) -> int:
        return self._native.num_threads

    @property
    def directory(self) -> str:
        return self._native.directory

    def encode(self, input_ids, attention_mask=None, token_type_ids=None) -> EncoderOutput:
        """Run the encoder on int arrays of shape (batch, seq)."""
        ids = _as_ids("input_ids", input_ids)
        mask = (
            None if attention_mask is None else _as_ids("attention_mask", attention_mask, ids.shape)
        )
        types = (
            None if token_type_ids is None else _as_ids("token_type_ids", token_type_ids, ids.shape)
        )
        hidden, pooled, logits = self._native.encode(ids, mask, types)
        return EncoderOutput(last_hidden_state=hidden, pooler_output=pooled, logits=logits)

    def __repr__(self) -> str:
        info = self._native.info
        return (
            f"EncoderModel({info['model_type']}, hidden={info['hidden_size']}, "
            f"layers={info['num_layers']}, threads={self.threads}, dir={self.directory!r})"
        )


def load(path: str | os.PathLike, threads: int | None = None) -> EncoderModel:
    """Load a model directory in Hugging Face layout (config.json, model.safetensors).

    ``threads``: intra-op threads for this model's calls; None uses every core.
    Raises ``nlpengine.ModelError`` naming the file and tensor or key when the
    directory cannot be used.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return EncoderModel(_core.EncoderModel.load(os.fspath(path), threads or 0))
