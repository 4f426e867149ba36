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


#: config.json key that says how a model's token type ids are made. Absent (or
#: "segments"): the tokenizer's own type ids (0 for a single text, 0/1 for the two texts of
#: a pair), as in transformers. "casing": each token's type says whether the word it comes
#: from starts with a capital letter (see :func:`casing_type_ids`), which lets a model over a
#: lower-casing tokenizer see capitalisation. ``engine train --token-types casing`` writes it.
TOKEN_TYPES_KEY = "nlpengine_token_types"
#: The values TOKEN_TYPES_KEY may take.
TOKEN_TYPE_SCHEMES = ("segments", "casing")


def token_type_scheme(config: dict, where: str | Path = "config.json") -> str:
    """The token-type scheme a model's config.json asks for ("segments" when absent);
    ModelError naming ``where`` for an unknown one."""
    scheme = config.get(TOKEN_TYPES_KEY)
    if scheme is None:
        return "segments"
    if not isinstance(scheme, str) or scheme not in TOKEN_TYPE_SCHEMES:
        raise ModelError(
            f"{where}: {TOKEN_TYPES_KEY} is {scheme!r}; expected one of "
            f"{', '.join(TOKEN_TYPE_SCHEMES)}"
        )
    return scheme


def model_token_type_scheme(model_dir: str | Path) -> str:
    """:func:`token_type_scheme` of a model (or adapter) directory's config.json."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return "segments"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read: {e}") from e
    return token_type_scheme(config if isinstance(config, dict) else {}, path)


def casing_type_ids(text: str, encoding) -> list[int]:
    """Token types that carry capitalisation: 1 for every token of a word whose first
    character is upper case (``"Paris"``, ``"NASA"``, all pieces of ``"McDonald"``), 0 for
    the others and for special tokens.

    ``encoding`` is a ``tokenizers.Encoding`` of ``text`` (with or without special tokens);
    a word is what the tokenizer's pre-tokenizer made of it (its ``word_ids``), so BERT's
    ``"U.S."`` is four words, two of them capitalised.
    """
    word_ids = encoding.word_ids  # each read of an Encoding's attribute builds a new list
    starts: dict[int, int] = {}  # each word's first character
    for word, (start, end) in zip(word_ids, encoding.offsets, strict=True):
        if word is not None and end > start:
            first = starts.get(word)
            if first is None or start < first:
                starts[word] = start
    upper = {word: 1 for word, start in starts.items() if text[start].isupper()}
    return [upper.get(word, 0) for word in word_ids]
