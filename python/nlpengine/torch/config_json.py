"""Reading a Hugging Face ``config.json`` and checking its sizes: what the encoder
(:mod:`nlpengine.torch.config`) and encoder-decoder (:mod:`nlpengine.torch.seq2seq_config`)
configurations share."""

from __future__ import annotations

import json
import os

__all__ = ["check_positive_ints", "read_config_json"]


def read_config_json(path: str | os.PathLike) -> tuple[str, dict]:
    """(the file's path, its JSON object) for a config.json file or a model directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path, encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return path, raw


def check_positive_ints(config, keys) -> None:
    """A ValueError naming the first of ``keys`` whose value on ``config`` is not a
    positive integer."""
    for key in keys:
        value = getattr(config, key)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"config.json: {key} must be a positive integer, got {value!r}")
