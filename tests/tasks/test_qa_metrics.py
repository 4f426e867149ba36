"""SQuAD exact match / F1 on hand-computed cases, and the SQuAD reader."""

from __future__ import annotations

import json

import pytest
from nlpengine.io import InputError, guess_format, read_records
from nlpengine_qa import exact_match, f1_score, normalize_answer, squad_metrics


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple,  a pear and THE plum. ", "apple pear and plum"),
        ("theatre and anthem", "theatre and anthem"),  # articles only as whole words
        ("A", ""),
        ("U.S.-led", "usled"),
        ("", ""),
    ],
)
def test_normalisation(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Eiffel tower", "Eiffel Tower.") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    # pred {eiffel}, gold {eiffel, tower}: P = 1, R = 1/2, F1 = 2/3
    assert f1_score("Eiffel", "the Eiffel Tower") == pytest.approx(2 / 3)
    # pred {in, paris, france} vs gold {paris}: P = 1/3, R = 1 -> 0.5
    assert f1_score("in Paris, France", "Paris") == pytest.approx(0.5)
    # words count with multiplicity: common = min(2, 1) b + min(1, 2) c = 2; P = R = 2/3
    assert f1_score("b b c", "b c c") == pytest.approx(2 / 3)
    assert f1_score("cat", "dog") == 0.0
    assert f1_score("", "") == 1.0
    assert f1_score("the", "") == 1.0  # both empty once normalised
    assert f1_score("", "Paris") == 0.0


def test_squad_metrics_take_the_best_gold_answer_and_split_v2():
    predictions = ["Eiffel", "1889", "", "Paris", ""]
    references = [
        ["the Eiffel Tower", "Eiffel"],  # EM 1, F1 1 (second gold)
        ["in 1889"],  # EM 0, F1 2/3 (P 1, R 1/2)
        ["Gustave Eiffel"],  # no prediction on an answerable question: 0, 0
        [],  # impossible, predicted "Paris": 0, 0
        [],  # impossible, predicted nothing: 1, 1
    ]
    m = squad_metrics(predictions, references)
    assert m["total"] == 5
    assert m["exact_match"] == pytest.approx(100 * 2 / 5)
    assert m["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 0 + 1) / 5)
    assert m["HasAns_total"] == 3 and m["NoAns_total"] == 2
    assert m["HasAns_exact_match"] == pytest.approx(100 / 3)
    assert m["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert m["NoAns_exact_match"] == pytest.approx(50.0)
    assert m["NoAns_f1"] == pytest.approx(50.0)
    only_answerable = squad_metrics(["x"], [["x"]])
    assert only_answerable == {"exact_match": 100.0, "f1": 100.0, "total": 1}
    with pytest.raises(ValueError, match="one prediction per question"):
        squad_metrics(["a"], [])


def _squad(path, data):
    path.write_text(json.dumps({"version": "v2.0", "data": data}, indent=2), "utf-8")
    return path


def test_squad_reader_gives_one_record_per_question_with_its_line(tmp_path):
    context = "Ada Lovelace wrote the first program in 1843."
    path = _squad(
        tmp_path / "squad.json",
        [
            {
                "title": "Ada",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Who wrote it?",
                                "answers": [{"text": "Ada Lovelace", "answer_start": 0}],
                            },
                            {
                                "id": "q2",
                                "question": "When?",
                                "answers": [{"text": "1843", "answer_start": 99}],
                            },
                            {"id": "q3", "question": "Why?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    )
    assert guess_format(path, ("squad", "jsonl")) == "squad"
    assert guess_format(path) == "jsonl"
    items = list(read_records(path, "squad"))
    assert [i.record["id"] if i.record else None for i in items] == ["q1", None, "q3"]
    lines = path.read_text().splitlines()
    for item, qid in zip(items, ["q1", "q2", "q3"], strict=True):
        assert f'"id": "{qid}"' in lines[item.line]  # the line after the object's "{"
    assert items[0].record["context"] == context and items[0].record["title"] == "Ada"
    assert "qas[1]" in items[1].error and "'1843' is not at character 99" in items[1].error
    assert items[2].record["is_impossible"] is True


def test_squad_reader_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [\n{"paragraphs": [}\n]}', "utf-8")
    with pytest.raises(InputError, match=r"bad\.json:2: not valid JSON"):
        list(read_records(bad, "squad"))
    flat = tmp_path / "flat.json"
    flat.write_text("[1, 2]", "utf-8")
    with pytest.raises(InputError, match="not a SQuAD file"):
        list(read_records(flat, "squad"))
