"""One measurement for ``engine bench``: a task's pipeline timed on records from a file.

``engine bench`` runs :func:`measure` in a child process per compute type and round
(``python -m nlpengine.benchmark``, the settings as JSON on stdin, the result as JSON on
stdout), so that each run starts cold, owns its threads and reports its own peak memory.

A run loads the pipeline (``load_s``), answers the first batch (``first_result_s``: what
a process pays before its first answer, weights packed and kernels created on first
use included), makes one untimed pass over the records, then times passes over them
(``passes`` of them, and more until they add up to ``min_seconds``, so that a small
file still gives a steady figure) exactly as ``engine run`` processes them: chunks of
``CHUNK_BATCHES * batch_size`` records through the task's pipeline (which sorts each
chunk by length into batches), every result turned into its output record and encoded
as a JSON line (written nowhere). It returns each timed pass's share spent inside the
runtime's calls (``nlpengine.runtime_clock``; the rest is the Python around them) and
SHA-256 of those lines (the bytes ``engine run`` writes) and, per output record, a
digest with its floating-point values left out, so that the parent can say how many
records get the same answer under another compute type.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from nlpengine.errors import ModelError
from nlpengine.io import InputError, read_records
from nlpengine.io.writer import encode_line
from nlpengine.runner import CHUNK_BATCHES
from nlpengine.runtime import COMPUTE_TYPE_VARIABLE
from nlpengine.runtime_clock import runtime_seconds
from nlpengine.tasks import RecordError, TaskSpec


@dataclass
class BenchInputs:
    """The records a benchmark runs: pipeline inputs, where each came from, and the
    lines that were left out (bad records), as ``(line, reason)``."""

    inputs: list = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    ids: list = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    words: int = 0


def read_inputs(
    spec: TaskSpec,
    input_path: Path,
    fmt: str,
    *,
    text_field: str = "text",
    id_field: str = "id",
    limit: int | None = None,
) -> BenchInputs:
    """The first ``limit`` records of ``input_path`` that the task can run (all of them
    with None), as ``engine run`` reads and converts them. Records it cannot read or
    convert are skipped and listed with their line and reason."""
    found = BenchInputs()
    for item in read_records(input_path, fmt):
        if limit is not None and len(found.inputs) >= limit:
            break
        reason = item.error
        if reason is None:
            try:
                value = spec.to_input(item.record, text_field)
            except RecordError as e:
                reason = str(e)
        if reason is not None:
            found.skipped.append((item.line, reason))
            continue
        found.inputs.append(value)
        found.sources.append(f"{input_path}:{item.line}")
        found.ids.append(item.record.get(id_field, item.line) if id_field else item.line)
        found.words += count_words(value)
    return found


def count_words(value: Any) -> int:
    """Whitespace-separated words in every string of a pipeline input (a text, or a
    record such as a question and its context)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(count_words(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(count_words(v) for v in value)
    return 0


def answer_digest(record: Any) -> str:
    """A short digest of an output record with every float left out: two compute types
    give the same digest when they find the same entities, labels, spans or texts,
    whatever their scores."""

    def strip(value: Any) -> Any:
        if isinstance(value, float):
            return None
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(record), ensure_ascii=True, sort_keys=True)
    return hashlib.blake2b(text.encode("ascii"), digest_size=8).hexdigest()


def _one_pass(pipe, bench: BenchInputs, batch_size: int) -> list[bytes]:
    chunk = CHUNK_BATCHES * batch_size
    lines: list[bytes] = []
    for start in range(0, len(bench.inputs), chunk):
        stop = start + chunk
        results = pipe.run_inputs(bench.inputs[start:stop], bench.sources[start:stop])
        for record_id, result in zip(bench.ids[start:stop], results, strict=True):
            lines.append(encode_line(pipe.spec.to_output(record_id, result)))
    return lines


def measure(settings: dict) -> dict:
    """Load the pipeline ``settings`` describe and time it (see the module docstring).

    ``settings``: task, model (a directory or None for the task's default), input,
    format, text_field, id_field, limit, batch_size, threads, task_args (the task's
    options as command-line arguments, parsed here as ``engine run`` parses them), passes,
    min_seconds."""
    import nlpengine
    from nlpengine.cli.options import parse_task_options
    from nlpengine.plugins import get_registry

    spec = get_registry().task(settings["task"])
    options = parse_task_options(spec, settings["task_args"], "engine bench")
    bench = read_inputs(
        spec,
        Path(settings["input"]),
        settings["format"],
        text_field=settings["text_field"],
        id_field=settings["id_field"],
        limit=settings["limit"],
    )
    if not bench.inputs:
        raise InputError(f"{settings['input']}: no record the task can run")
    batch_size = int(settings["batch_size"])

    start = time.perf_counter()
    pipe = nlpengine.pipeline(
        spec.name,
        model=settings["model"],
        threads=settings["threads"],
        batch_size=batch_size,
        **options,
    )
    loaded = time.perf_counter()
    pipe.run_inputs(bench.inputs[:batch_size], bench.sources[:batch_size])
    first_answer = time.perf_counter()
    _one_pass(pipe, bench, batch_size)  # untimed: every batch shape meets its kernels once
    pass_seconds, runtime_share, digests = [], [], []
    passes, min_seconds = int(settings["passes"]), float(settings["min_seconds"])
    while len(pass_seconds) < passes or sum(pass_seconds) < min_seconds:
        t0, r0 = time.perf_counter(), runtime_seconds()
        lines = _one_pass(pipe, bench, batch_size)
        pass_seconds.append(time.perf_counter() - t0)
        runtime_share.append((runtime_seconds() - r0) / pass_seconds[-1])
        digests.append(hashlib.sha256(b"".join(lines)).hexdigest())

    compute_type = os.environ.get(COMPUTE_TYPE_VARIABLE) or "float32"
    return {
        "compute_type": compute_type,
        "records": len(bench.inputs),
        "words": bench.words,
        "load_s": loaded - start,
        "first_result_s": first_answer - start,
        "pass_s": pass_seconds,
        "runtime_share": runtime_share,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "output_sha256": digests,
        "answer_digests": [answer_digest(json.loads(line)) for line in lines],
        "gemm_library": nlpengine.gemm_library(),
        "arithmetic": _arithmetic(nlpengine, compute_type),
    }


def _arithmetic(nlpengine, compute_type: str) -> str:
    ask = {
        "int8": nlpengine.int8_arithmetic,
        "int8-mixed": nlpengine.int8_mixed_arithmetic,
        "bf16": nlpengine.bf16_arithmetic,
    }.get(compute_type)
    return ask() if ask else "float32"


def main() -> int:
    """``python -m nlpengine.benchmark``: settings as JSON on stdin, the result as JSON
    on stdout; an error is one line on stderr and exit status 2."""
    settings = json.loads(sys.stdin.read())
    try:
        result = measure(settings)
    except (InputError, ModelError, ValueError, RuntimeError, TypeError, OSError) as e:
        print(f"{type(e).__name__}: {e}" if not str(e) else str(e), file=sys.stderr)
        return 2
    json.dump(result, sys.stdout)
    return 0


def first_lines(items: list[tuple[int, str]], path: Path, n: int = 3) -> str:
    """``path:line: reason`` for the first ``n`` items, and how many more there are."""
    shown = "; ".join(f"{path}:{line}: {reason}" for line, reason in islice(items, n))
    more = len(items) - n
    return shown + (f"; and {more} more" if more > 0 else "")


if __name__ == "__main__":
    sys.exit(main())
