"""Batch-job readers on text that is not valid Unicode: a line with bytes that are not
UTF-8, or a JSON string escaping an unpaired surrogate, is a bad record of its own (named
by its line, skipped or failed by the job), not the end of the whole file, and the
records around it still come through."""

from __future__ import annotations

import json

import pytest
from nlpengine.io import InputError, ResumableOutput, read_records

GOOD = json.dumps({"id": 1, "text": "Ada Lovelace wrote in London."}).encode()
LAST = json.dumps({"id": 5, "text": "The end, in Oslo \U0001f600."}).encode()


def _items(path, fmt):
    return [(item.line, item.record, item.error) for item in read_records(path, fmt)]


def test_jsonl_lines_that_are_not_unicode_are_bad_records_of_their_own(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        b"\xef\xbb\xbf" + GOOD,  # a byte-order mark is dropped
        b'{"id": 2, "text": "caf\xe9 in Lyon"}',  # Latin-1, not UTF-8
        b'{"id": 3, "text": "\\ud800 alone"}',  # valid JSON, not Unicode text
        b'{"id": 4, "text": "a pair \\ud83d\\ude00 is fine"}',
        LAST,
    ]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    items = _items(path, "jsonl")
    assert [line for line, _, _ in items] == [1, 2, 3, 4, 5]
    assert items[0][1] == {"id": 1, "text": "Ada Lovelace wrote in London."}
    assert items[1][1] is None and "not valid UTF-8" in items[1][2] and "0xe9" in items[1][2]
    assert items[2][1] is None and "surrogate" in items[2][2] and "\\ud800" in items[2][2]
    assert items[3] == (4, {"id": 4, "text": "a pair \U0001f600 is fine"}, None)
    assert items[4][1]["text"].endswith("\U0001f600.")


def test_text_csv_and_conll_lines_that_are_not_utf8(tmp_path):
    text = tmp_path / "in.txt"
    text.write_bytes(b"first line\nsecond \xff line\nthird line\n")
    assert _items(text, "text")[0] == (1, {"text": "first line"}, None)
    line, record, error = _items(text, "text")[1]
    assert (line, record) == (2, None) and "UTF-8" in error and "0xff" in error
    assert _items(text, "text")[2] == (3, {"text": "third line"}, None)

    csv_path = tmp_path / "in.csv"
    csv_path.write_bytes(b"id,text\n1,fine\n2,not \xc3\x28 utf8\n3,also fine\n")
    items = _items(csv_path, "csv")
    assert [i[1] for i in items] == [
        {"id": "1", "text": "fine"},
        None,
        {"id": "3", "text": "also fine"},
    ]
    assert items[1][0] == 3 and "UTF-8" in items[1][2]

    conll = tmp_path / "in.conll"
    conll.write_bytes(b"Ada B-PER\n\nOslo B-LOC\nis\xfe O\n\nParis B-LOC\n")
    items = _items(conll, "conll")
    assert items[0][1]["tokens"] == ["Ada"]
    assert items[1][1] is None and "line 4" in items[1][2] and "UTF-8" in items[1][2]
    assert items[2][1]["tokens"] == ["Paris"]


def test_a_utf16_file_is_refused_as_a_whole(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes('{"text": "hello"}\n'.encode("utf-16"))
    with pytest.raises(InputError, match=r"in\.jsonl.*UTF-16"):
        list(read_records(path, "jsonl"))


def test_a_rejected_record_with_a_lone_surrogate_is_written_as_valid_utf8(tmp_path):
    out = ResumableOutput(tmp_path / "out.jsonl", resume=False)
    out.reject({"line": 3, "error": "bad", "record": {"text": "\ud800 alone"}})
    out.write({"id": "\udcff", "entities": []})
    out.checkpoint(2)
    out.close(True)
    for name in ("out.jsonl", "out.jsonl.rejects.jsonl"):
        raw = (tmp_path / name).read_bytes()
        raw.decode("utf-8")  # strict
        assert json.loads(raw)


def test_a_squad_question_with_a_lone_surrogate_is_a_bad_record(tmp_path):
    path = tmp_path / "dev.json"
    qas = [
        {"id": "a", "question": "Where?", "answers": []},
        {"id": "b", "question": "Wh\\ud800ere?", "answers": []},
    ]
    document = {"data": [{"title": "t", "paragraphs": [{"context": "In Oslo.", "qas": qas}]}]}
    path.write_text(json.dumps(document).replace("\\\\ud800", "\\ud800"), encoding="utf-8")
    items = list(read_records(path, "squad"))
    assert items[0].record is not None and items[0].error is None
    assert items[1].record is None and "qas[1]" in items[1].error and "surrogate" in items[1].error


@pytest.mark.parametrize("task", ["ner", "classification", "summarization"])
def test_a_text_that_is_not_unicode_is_a_record_error_of_every_text_task(task):
    """The adapters' text check (nlpengine.tasks.record_text): the pipelines' tokenizers
    would refuse an unpaired surrogate with a TypeError that names nothing."""
    from nlpengine.plugins import get_registry
    from nlpengine.tasks import RecordError

    spec = get_registry().task(task)
    with pytest.raises(RecordError, match=r"'text'.*surrogate \(\\udcff at character 4\)"):
        spec.to_input({"text": "abc\udcffdef"}, "text")


def test_the_default_ner_pipeline_names_a_text_that_is_not_unicode():
    import nlpengine
    from nlpengine.tasks import RecordError

    ner = nlpengine.pipeline("ner")
    with pytest.raises(RecordError, match="surrogate"):
        ner(["Ada Lovelace in London.", "Wh\ud800ere"])
    assert ner("Ada Lovelace in London.")[0]["label"] == "PERSON"


def test_a_csv_field_longer_than_the_csv_module_s_default_limit(tmp_path):
    """A 200,000-character document in a CSV cell reads like one in JSONL (the csv module
    stops at 131,072 by default, which failed the whole file)."""
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,short\n2," + "word " * 40_000 + "\n3,last\n", encoding="utf-8")
    items = _items(path, "csv")
    assert [i[0] for i in items] == [2, 3, 4] and all(i[2] is None for i in items)
    assert len(items[1][1]["text"]) == 200_000
