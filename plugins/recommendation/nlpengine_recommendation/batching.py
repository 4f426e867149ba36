"""Texts (or text pairs) through the runtime in length-sorted batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from nlpengine.errors import ModelError
from nlpengine.tokenization import load_tokenizer
from tokenizers import Encoding

#: transformers writes this huge value as model_max_length when a tokenizer has no limit.
_NO_TOKENIZER_LIMIT = 10**9


def _tokenizer_limit(model_dir: Path) -> int | None:
    path = model_dir / "tokenizer_config.json"
    if not path.is_file():
        return None
    try:
        limit = json.loads(path.read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read tokenizer config: {e}") from e
    if isinstance(limit, (int, float)) and 0 < limit < _NO_TOKENIZER_LIMIT:
        return int(limit)
    return None


class TextBatches:
    """A runtime model with its tokenizer: ``encode`` tokenizes (cutting to the model's
    maximum length, the longest text of a pair first), ``run`` yields ``(rows, output,
    attention_mask)`` per batch of similar lengths, ``rows`` indexing the encodings."""

    def __init__(self, model, batch_size: int, max_length: int | None = None):
        self.model = model
        self.batch_size = batch_size
        tokenizer_dir = Path(getattr(model, "tokenizer_directory", None) or model.directory)
        limit = int(model.config["max_sequence_length"])
        for other in (_tokenizer_limit(tokenizer_dir), max_length):
            if other is not None:
                limit = min(limit, other)
        self.max_length = limit
        tokenizer = load_tokenizer(tokenizer_dir)
        self.pad_id = int(tokenizer.padding["pad_id"]) if tokenizer.padding else 0
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=limit, strategy="longest_first")
        self.tokenizer = tokenizer
        # Token types only where the model has more than one (not DistilBERT, RoBERTa).
        self.use_token_types = int(model.config.get("type_vocab_size", 0)) >= 2

    def encode(self, items: list) -> list[Encoding]:
        if not items:
            return []
        return self.tokenizer.encode_batch(items)

    def run(self, encodings: list[Encoding]) -> Iterator[tuple[list[int], object, np.ndarray]]:
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = [encodings[i] for i in rows]
            seq = max(1, max(len(e.ids) for e in batch))
            ids = np.full((len(batch), seq), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), seq), dtype=np.int64)
            types = np.zeros((len(batch), seq), dtype=np.int64) if self.use_token_types else None
            for r, enc in enumerate(batch):
                n = len(enc.ids)
                ids[r, :n] = enc.ids
                mask[r, :n] = 1
                if types is not None:
                    types[r, :n] = enc.type_ids
            output = self.model.encode(ids, attention_mask=mask, token_type_ids=types)
            yield rows, output, mask
