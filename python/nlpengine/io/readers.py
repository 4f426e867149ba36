"""Streaming readers: each yields one :class:`InputItem` per input record, never holding
the whole file in memory. A record that cannot be parsed becomes an item with an
``error`` (the batch job fails or skips it), so one bad line does not hide the rest;
that includes a line whose bytes are not UTF-8, and a record whose JSON escapes an
unpaired surrogate (valid JSON, but no Unicode text: tokenizers and UTF-8 writers refuse
it)."""

from __future__ import annotations

import csv
import json
import re
import sys
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


_SURROGATE = re.compile("[\ud800-\udfff]")
_LARGEST_FIELD = min(sys.maxsize, 2**31 - 1)  # what csv.field_size_limit takes everywhere
#: A JSON escape of a surrogate (pairs are fine: json.loads joins them).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _open(path: Path):
    """Text lines as stored: utf-8-sig drops a byte-order mark, and a byte that is not
    UTF-8 is kept as a lone surrogate (surrogateescape) for :func:`_not_utf8` to report
    on its line, so the lines around it still read."""
    with path.open("rb") as f:
        head = f.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(
            f"{path}: the file is UTF-16 (its byte-order mark says so); convert it to UTF-8"
        )
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _not_utf8(text: str) -> str | None:
    """Why a line read by :func:`_open` is not UTF-8, or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
        return f"not valid UTF-8 (byte 0x{code - 0xDC00:02x} at character {found.start() + 1})"
    return f"not valid UTF-8 (an encoded surrogate at character {found.start() + 1})"


def _unpaired_surrogate(value) -> str | None:
    """Why a parsed JSON value holds no Unicode text (a string, key or nested one with an
    unpaired surrogate), or None."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            return (
                f"a string holds an unpaired surrogate (\\u{ord(found.group()):04x}), "
                "which is not Unicode text"
            )
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        for part in value:
            problem = _unpaired_surrogate(part)
            if problem:
                return problem
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open(path) as f:
        yield from enumerate(f, start=1)


def _read_jsonl(path: Path) -> Iterator[InputItem]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        problem = _not_utf8(line)
        if problem:
            yield InputItem(number, None, problem)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield InputItem(number, None, f"not valid JSON: {e.msg} (column {e.colno})")
            continue
        if not isinstance(record, dict):
            yield InputItem(number, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        problem = _unpaired_surrogate(record) if _SURROGATE_ESCAPE.search(line) else None
        if problem:
            yield InputItem(number, None, problem)
            continue
        yield InputItem(number, record)


def _read_text(path: Path) -> Iterator[InputItem]:
    for number, line in _lines(path):
        problem = _not_utf8(line)
        if problem:
            yield InputItem(number, None, problem)
            continue
        yield InputItem(number, {"text": line.rstrip("\r\n")})


def _read_delimited(path: Path, delimiter: str) -> Iterator[InputItem]:
    # The csv module refuses fields over 131,072 characters by default; a document that
    # long is an input like any other (JSONL and text take it).
    csv.field_size_limit(_LARGEST_FIELD)
    try:
        with _open(path) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            if reader.fieldnames is None:
                return
            problem = next(filter(None, map(_not_utf8, reader.fieldnames)), None)
            if problem:
                raise InputError(f"{path}:1: the header is {problem}")
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
                problem = next(filter(None, map(_not_utf8, row.values())), None)
                if problem:
                    yield InputItem(line, None, problem)
                    continue
                yield InputItem(line, dict(row))
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
        problem = _not_utf8(line)
        if problem:
            bad = bad or f"line {number}: {problem}"
            continue
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
