"""Seconds spent inside the C++ runtime's calls, summed over the process.

Every encode, generate and forward call adds its duration here (two clock reads per
call). ``engine bench`` reads it around a timed pass to say what share of the pass the
runtime took and what share went to the Python around it (reading, tokenizing,
decoding answers, encoding output). Calls from several threads at once are all added,
so the sum may exceed the wall-clock time between two reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_seconds = 0.0


def runtime_seconds() -> float:
    """Seconds spent in runtime calls so far in this process."""
    with _lock:
        return _seconds


@contextmanager
def runtime_call() -> Iterator[None]:
    """Adds the duration of the ``with`` block to :func:`runtime_seconds`."""
    global _seconds
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        with _lock:
            _seconds += elapsed
