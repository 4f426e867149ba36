"""A JSONL output (plus its rejects file) that a batch job can resume after a crash.

After each flushed chunk the writer records, in ``<output>.progress.json`` (replaced
atomically), how many input records are done and the byte size of both files. On
``--resume`` both files are cut back to those sizes, discarding anything written after
the last checkpoint, and the job skips the records already done; the final output is
the same as an uninterrupted run's. The progress file is removed when the job ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ResumableOutput:
    def __init__(self, output: Path, resume: bool):
        self.output = output
        self.rejects = output.with_name(output.name + ".rejects.jsonl")
        self.progress = output.with_name(output.name + ".progress.json")
        self.done = 0  # input records accounted for (written or rejected)
        state = self._read_progress() if resume else None
        if resume and state is None and output.exists() and output.stat().st_size > 0:
            raise FileExistsError(
                f"{output}: cannot resume, no progress file {self.progress.name} "
                "(the earlier run finished, or was not started by this version)"
            )
        if state:
            self.done = state["records"]
            self._out = self._open_truncated(output, state["output_bytes"])
            self._rej = self._open_truncated(self.rejects, state["rejects_bytes"])
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            self._out = output.open("wb")
            self._rej = None  # created on the first reject
            if self.rejects.exists():
                self.rejects.unlink()
        self.rejected = 0

    def _read_progress(self) -> dict | None:
        if not self.progress.exists():
            return None
        try:
            state = json.loads(self.progress.read_text(encoding="utf-8"))
            return {k: int(state[k]) for k in ("records", "output_bytes", "rejects_bytes")}
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{self.progress}: unreadable progress file ({e})") from e

    @staticmethod
    def _open_truncated(path: Path, size: int):
        if not path.exists():
            if size:
                raise ValueError(f"{path}: missing, but the progress file expects {size} bytes")
            return None if path.name.endswith(".rejects.jsonl") else path.open("wb")
        f = path.open("r+b")
        f.truncate(size)
        f.seek(size)
        return f

    def write(self, record: dict) -> None:
        self._out.write(encode_line(record))

    def reject(self, record: dict) -> None:
        if self._rej is None:
            self._rej = self.rejects.open("ab")
        self._rej.write(encode_line(record))
        self.rejected += 1

    def checkpoint(self, records_done: int) -> None:
        """Flush both files to disk, then record that ``records_done`` inputs are done."""
        self.done = records_done
        for f in (self._out, self._rej):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
        state = {
            "records": records_done,
            "output_bytes": self._out.tell(),
            "rejects_bytes": self._rej.tell() if self._rej is not None else 0,
        }
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.progress)

    def close(self, finished: bool) -> None:
        for f in (self._out, self._rej):
            if f is not None:
                f.close()
        if finished and self.progress.exists():
            self.progress.unlink()


def encode_line(record: dict) -> bytes:
    """One output record as the JSONL line the job writes."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate (a rejected record's): escape it
        return (json.dumps(record) + "\n").encode("ascii")
