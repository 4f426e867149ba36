"""Tokenization with the `tokenizers` library from a model directory's tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

from nlpengine.errors import ModelError


def load_tokenizer(model_dir: str | Path, max_length: int | None = None) -> Tokenizer:
    """The directory's fast tokenizer, padding to the longest text of a batch and,
    with ``max_length``, truncating longer texts (overflow is kept so callers can warn)."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"{path}: no tokenizer.json in the model directory")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise ModelError(f"{path}: cannot load tokenizer: {e}") from e
    pad_id, pad_token = _pad_token(Path(model_dir), tokenizer)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    if max_length is not None:
        tokenizer.enable_truncation(max_length=max_length)
    else:
        tokenizer.no_truncation()
    return tokenizer


def _pad_token(model_dir: Path, tokenizer: Tokenizer) -> tuple[int, str]:
    pad_token = None
    special = model_dir / "special_tokens_map.json"
    if special.is_file():
        value = json.loads(special.read_text(encoding="utf-8")).get("pad_token")
        pad_token = value.get("content") if isinstance(value, dict) else value
    if pad_token is None and tokenizer.padding:
        pad_token = tokenizer.padding.get("pad_token")
    for candidate in (pad_token, "[PAD]", "<pad>"):
        if candidate is not None and tokenizer.token_to_id(candidate) is not None:
            return tokenizer.token_to_id(candidate), candidate
    return 0, "[PAD]"
