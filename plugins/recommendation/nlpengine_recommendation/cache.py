"""Item embeddings computed once per job: each item is encoded the first time a request
needs it and kept by catalog position for every later request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class EmbeddingCache:
    """``vectors(positions)`` gives the embeddings of those catalog items, (n, dim)
    float32, computing the missing ones with ``embed(texts)`` in one call."""

    def __init__(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]):
        self._texts = texts
        self._embed = embed
        self._rows: dict[int, int] = {}  # catalog position -> row of _store
        self._store: np.ndarray | None = None
        self.encoded = 0  # items encoded so far (each once)

    def __len__(self) -> int:
        return len(self._rows)

    def vectors(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        missing = list(dict.fromkeys(int(p) for p in positions if int(p) not in self._rows))
        if missing:
            new = np.asarray(self._embed([self._texts[p] for p in missing]), dtype=np.float32)
            start = 0 if self._store is None else self._store.shape[0]
            self._store = new if self._store is None else np.concatenate([self._store, new])
            for offset, p in enumerate(missing):
                self._rows[p] = start + offset
            self.encoded += len(missing)
        if self._store is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self._store[[self._rows[int(p)] for p in positions]]
