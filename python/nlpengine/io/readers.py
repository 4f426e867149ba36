"""Streaming readers: each yields one :class:`InputItem` per input record, never holding
the whole file in memory. A record that cannot be parsed becomes an item with an
``error`` (the batch job fails or skips it), so one bad line does not hide the rest."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("jsonl", "csv", "tsv", "text", "conll", "squad")

#: The formats an extension may mean, the usual one first (a task that reads only some
#: formats takes the first of them it reads: ``.json`` is SQuAD for question answering).
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": ("jsonl", "squad"),
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".text": "text",
    ".conll": "conll",
    ".iob": "conll",
}


class InputError(ValueError):
    """A problem with an input file that names the file and line."""


@dataclass
class InputItem:
    line: int  # 1-based line where the record starts
    record: dict | None
    error: str | None = None


def guess_format(path: Path, accepted: Sequence[str] | None = None) -> str:
    """The format ``path``'s extension means; with ``accepted`` (the formats a task
    reads, preferred first), the first accepted one the extension may mean."""
    meanings = _EXTENSIONS.get(path.suffix.lower())
    if isinstance(meanings, str):
        meanings = (meanings,)
    fmt = None
    if meanings:
        fmt = meanings[0]
        if accepted:
            fmt = next((f for f in accepted if f in meanings), fmt)
    if fmt is None:
        raise InputError(
            f"{path}: cannot guess the input format from the extension '{path.suffix}'; "
            f"pass --format ({'|'.join(FORMATS)})"
        )
    return fmt


def read_records(path: Path, fmt: str) -> Iterator[InputItem]:
    from nlpengine.io.squad import read_squad

    readers = {
        "jsonl": _read_jsonl,
        "csv": lambda p: _read_delimited(p, ","),
        "tsv": lambda p: _read_delimited(p, "\t"),
        "text": _read_text,
        "conll": read_conll,
        "squad": read_squad,
    }
    if fmt not in readers:
        raise InputError(f"{path}: unknown format '{fmt}' (expected one of {', '.join(FORMATS)})")
    return readers[fmt](path)


def _open(path: Path):
    # utf-8-sig drops a byte-order mark; invalid bytes raise a clear error below.
    return path.open(encoding="utf-8-sig", newline="")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with _open(path) as f:
            yield from enumerate(f, start=1)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e


def _read_jsonl(path: Path) -> Iterator[InputItem]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield InputItem(number, None, f"not valid JSON: {e.msg} (column {e.colno})")
            continue
        if not isinstance(record, dict):
            yield InputItem(number, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield InputItem(number, record)


def _read_text(path: Path) -> Iterator[InputItem]:
    for number, line in _lines(path):
        yield InputItem(number, {"text": line.rstrip("\r\n")})


def _read_delimited(path: Path, delimiter: str) -> Iterator[InputItem]:
    try:
        with _open(path) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            if reader.fieldnames is None:
                return
            for row in reader:
                line = reader.line_num
                if None in row:
                    yield InputItem(
                        line,
                        None,
                        f"more fields than the {len(reader.fieldnames)} columns of the header",
                    )
                    continue
                if any(v is None for v in row.values()):
                    yield InputItem(
                        line,
                        None,
                        f"fewer fields than the {len(reader.fieldnames)} columns of the header",
                    )
                    continue
                yield InputItem(line, dict(row))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise InputError(f"{path}: {e}") from e


def read_conll(path: Path) -> Iterator[InputItem]:
    """CoNLL files: one ``TOKEN TAG`` (or ``TOKEN ... TAG``) per line, a blank line
    between sentences, ``# key = value`` comment lines. Yields one record per sentence:
    ``{"text", "tokens", "tags", "token_spans", **comments}`` where ``text`` is the
    ``# text =`` comment when present and matching, else the tokens joined by spaces,
    and ``token_spans`` the character offsets of each token in ``text``."""
    tokens: list[str] = []
    tags: list[str] = []
    comments: dict[str, str] = {}
    start = 0
    bad: str | None = None
    for number, raw in _lines(path):
        line = raw.rstrip("\r\n")
        fields = line.split()
        if not fields:
            if tokens or bad:
                yield _conll_item(start, tokens, tags, comments, bad)
            tokens, tags, comments, bad, start = [], [], {}, None, 0
            continue
        start = start or number
        if line.startswith("# ") and len(fields) >= 4 and fields[2] == "=":
            comments[fields[1]] = line.split("=", 1)[1].strip()
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if len(fields) < 2:
            bad = bad or f"line {number}: expected 'TOKEN TAG', got {line!r}"
            continue
        tokens.append(fields[0])
        tags.append(fields[-1])
    if tokens or bad:
        yield _conll_item(start, tokens, tags, comments, bad)


def _conll_item(line: int, tokens, tags, comments, bad) -> InputItem:
    if bad:
        return InputItem(line, None, bad)
    text = comments.get("text")
    spans = _token_spans(text, tokens) if text is not None else None
    if spans is None:
        text = " ".join(tokens)
        spans = _token_spans(text, tokens)
    record = {**comments, "text": text, "tokens": tokens, "tags": tags, "token_spans": spans}
    return InputItem(line, record)


def _token_spans(text: str, tokens: list[str]) -> list[tuple[int, int]] | None:
    spans, pos = [], 0
    for token in tokens:
        found = text.find(token, pos)
        if found < 0:
            return None
        spans.append((found, found + len(token)))
        pos = found + len(token)
    return spans
