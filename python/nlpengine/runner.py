"""The batch job behind ``engine run``: stream records in, results out, in input order.

Records are read lazily and processed in chunks of ``8 * batch_size``; within a chunk
the task's pipeline sorts by length into batches (length buckets) and returns results
in input order. Each chunk's results are written and flushed before the next is read,
with a checkpoint that ``--resume`` continues from. With ``on_error="skip"`` a bad
record goes to ``<output>.rejects.jsonl`` with its line and reason; with ``"fail"``
the job stops with an error naming the file and line, after writing every record
before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from nlpengine.io import InputError, InputItem, ResumableOutput, read_records
from nlpengine.pipeline import TaskPipeline
from nlpengine.tasks import RecordError

CHUNK_BATCHES = 8


class RecordFailure(InputError):
    """A record the job could not process, with ``on_error="fail"``."""


@dataclass
class RunStats:
    records: int = 0  # input records accounted for, including earlier runs when resuming
    written: int = 0
    rejected: int = 0
    resumed_from: int = 0
    seconds: float = 0.0


def run_job(
    pipe: TaskPipeline,
    input_path: Path,
    fmt: str,
    output_path: Path,
    *,
    text_field: str = "text",
    id_field: str = "id",
    batch_size: int = 32,
    resume: bool = False,
    on_error: str = "fail",
    on_progress: Callable[[int], None] | None = None,
) -> RunStats:
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    out = ResumableOutput(output_path, resume)
    stats = RunStats(records=out.done, resumed_from=out.done)
    start = time.perf_counter()
    finished = False
    try:
        items = read_records(input_path, fmt)
        skipped = list(islice(items, out.done))
        if len(skipped) < out.done:
            raise InputError(
                f"{input_path}: has {len(skipped)} records, fewer than the "
                f"{out.done} the progress file says were done"
            )
        for chunk in _chunks(items, CHUNK_BATCHES * batch_size):
            _process_chunk(pipe, chunk, out, stats, input_path, text_field, id_field, on_error)
            if on_progress:
                on_progress(len(chunk))
        finished = True
    finally:
        out.close(finished)
        stats.seconds = time.perf_counter() - start
    return stats


def _chunks(items: Iterable[InputItem], size: int) -> Iterator[list[InputItem]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _process_chunk(pipe, chunk, out, stats, path, text_field, id_field, on_error) -> None:
    # (item, reason it cannot run, record id, index into inputs) per record, in order
    outcomes: list[tuple[InputItem, str | None, object, int]] = []
    inputs: list = []
    sources: list[str] = []  # where each input came from, for the task's warnings
    for item in chunk:
        reason = item.error
        if reason is None:
            try:
                value = pipe.spec.to_input(item.record, text_field)
            except RecordError as e:
                reason = str(e)
        if reason is not None:
            outcomes.append((item, reason, None, -1))
            if on_error == "fail":
                break  # records after the bad one are left for a --resume run
            continue
        record_id = item.record.get(id_field, item.line) if id_field else item.line
        outcomes.append((item, None, record_id, len(inputs)))
        inputs.append(value)
        has_id = bool(id_field) and id_field in item.record
        sources.append(f"{path}:{item.line}" + (f" (id {record_id!r})" if has_id else ""))

    results = _run_isolating_failures(pipe, inputs, sources)
    for item, reason, record_id, k in outcomes:
        if reason is None and isinstance(results[k], _Rejected):
            reason = results[k].reason
        if reason is not None:
            if on_error == "fail":
                out.checkpoint(stats.records)  # keep everything before the bad record
                raise RecordFailure(f"{path}:{item.line}: {reason}")
            out.reject({"line": item.line, "error": reason, "record": item.record})
            stats.rejected += 1
        else:
            out.write(pipe.spec.to_output(record_id, results[k]))
            stats.written += 1
        stats.records += 1
    out.checkpoint(stats.records)


@dataclass
class _Rejected:
    reason: str


def _run_isolating_failures(pipe, inputs: list, sources: list[str]) -> list:
    """The pipeline's results; when a batch fails, the inputs at fault are found by
    running halves again and come back as :class:`_Rejected` with the error. (TypeError
    too: a tokenizer raises it for an input it cannot take.)"""
    try:
        return pipe.run_inputs(inputs, sources)
    except (ValueError, RuntimeError, TypeError) as error:
        if len(inputs) == 1:
            return [_Rejected(f"{type(error).__name__}: {error}")]
        half = len(inputs) // 2
        return _run_isolating_failures(
            pipe, inputs[:half], sources[:half]
        ) + _run_isolating_failures(pipe, inputs[half:], sources[half:])
