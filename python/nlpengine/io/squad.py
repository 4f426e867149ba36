"""SQuAD v1.1 / v2.0 files: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
"question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``.

The file is one JSON document, so it is parsed whole; each question becomes one record
``{"id", "question", "context", "answers", "is_impossible", "title"}`` whose ``line`` is
where the question's object starts in the file, so errors name the file and line like
those of the line-based formats. A question that cannot be used (missing or mistyped
field, an answer that is not at ``answer_start`` in the context) becomes an item with an
error; the other questions are still read.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterator
from pathlib import Path

from nlpengine.io.readers import InputError, InputItem, _unpaired_surrogate

__all__ = ["question_record", "read_squad"]


def read_squad(path: Path) -> Iterator[InputItem]:
    text = _read_text(path)
    document, starts = _parse_with_positions(path, text)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(obj) -> int:
        return bisect.bisect_left(newlines, starts.get(id(obj), 0)) + 1

    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InputError(f"{path}: not a SQuAD file: expected an object with a 'data' list")
    for a, article in enumerate(document["data"]):
        where = f"data[{a}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            yield InputItem(line_of(article), None, f"{where}: expected a 'paragraphs' list")
            continue
        title = article.get("title")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                yield InputItem(line_of(article), None, f"{where}: expected an object")
                continue
            context = paragraph.get("context")
            qas = paragraph.get("qas")
            if not isinstance(context, str) or not isinstance(qas, list):
                yield InputItem(
                    line_of(paragraph),
                    None,
                    f"{where}: expected a 'context' string and a 'qas' list",
                )
                continue
            for q, qa in enumerate(qas):
                line = line_of(qa)
                try:
                    record = question_record(qa, context, title)
                except ValueError as e:
                    yield InputItem(line, None, f"{where}.qas[{q}]: {e}")
                    continue
                problem = _unpaired_surrogate(record)
                if problem:
                    yield InputItem(line, None, f"{where}.qas[{q}]: {problem}")
                    continue
                yield InputItem(line, record)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from e


def _parse_with_positions(path: Path, text: str) -> tuple[object, dict[int, int]]:
    """The document and, for every JSON object in it, its start offset (by ``id()``).
    Python's own JSON parser with a hook on objects (its pure-Python scanner, since the C
    scanner has no hooks)."""
    starts: dict[int, int] = {}
    decoder = json.JSONDecoder()

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        start = s_and_end[1] - 1  # the offset of the opening brace
        obj, end = json.decoder.JSONObject(
            s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo
        )
        starts[id(obj)] = start
        return obj, end

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        document = decoder.decode(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})") from e
    except RecursionError as e:
        raise InputError(f"{path}: JSON nested too deeply") from e
    return document, starts


def question_record(qa, context: str, title=None) -> dict:
    """A SQuAD question object ``{"id", "question", "answers", "is_impossible"?}`` over
    ``context`` as a flat record; ``ValueError`` with the reason when it cannot be used
    (each answer must be found at its ``answer_start`` in the context)."""
    if not isinstance(qa, dict):
        raise ValueError("expected a question object")
    qid = qa.get("id")
    if qid is None:
        raise ValueError("missing 'id'")
    question = qa.get("question")
    if not isinstance(question, str):
        raise ValueError(f"question {qid!r}: missing 'question' string")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise ValueError(f"question {qid!r}: 'is_impossible' must be true or false")
    answers = []
    for k, answer in enumerate(qa.get("answers") or []):
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(
                f"question {qid!r}: answers[{k}] needs a 'text' string and an 'answer_start' int"
            )
        if context[start : start + len(text)] != text:
            raise ValueError(
                f"question {qid!r}: answers[{k}] {text!r} is not at character {start} "
                "of the context"
            )
        answers.append({"text": text, "answer_start": start})
    if not answers and not impossible and "answers" not in qa:
        raise ValueError(f"question {qid!r}: missing 'answers'")
    record = {
        "id": qid,
        "question": question,
        "context": context,
        "answers": answers,
        "is_impossible": impossible or (not answers),
    }
    if title is not None:
        record["title"] = title
    return record
