"""Progress on stderr: records done and records per second, redrawn in place on a
terminal (at most five times a second) and silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time


class RecordProgress:
    def __init__(self, label: str, stream=None):
        self._label = label
        self._stream = stream or sys.stderr
        self._enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._count = 0

    def advance(self, records: int) -> None:
        self._count += records
        now = time.perf_counter()
        if self._enabled and now - self._last_draw >= 0.2:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self._count / max(now - self._start, 1e-9)
        self._stream.write(f"\r{self._label}: {self._count} records, {rate:.1f} records/s ")
        self._stream.flush()

    def __enter__(self) -> RecordProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self._enabled and self._count:
            self._draw(time.perf_counter())
            self._stream.write("\n")
            self._stream.flush()
