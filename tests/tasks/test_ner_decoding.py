"""NER decoding without transformers as the reference: tag schemes, entity grouping,
entities_to_tags, seqeval metrics against hand-computed numbers, and long-text windows.

Most pipeline tests use a fake model: a tokenizer.json made here plus an object with the
runtime model's interface whose logits depend only on each token (a fixed label per
vocabulary entry), so expected entities can be written by hand and windowed runs must agree
exactly with single-window runs. The window tests at the end run a real tiny model whose
``max_position_embeddings`` is 32 and check the stitched scores against transformers run on
each window.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest_ner import BIO_LABELS, save_ner_model, softmax, wordpiece_tokenizer
from nlpengine_ner import NerPipeline, detect_scheme, entities_to_tags, ner_metrics
from nlpengine_ner.pipeline import (
    group_entities,
    merge_window_logits,
    token_entities,
    window_spans,
)
from nlpengine_ner.tags import split_tag

# ---------------------------------------------------------------------------
# A fake runtime model with context-free logits
# ---------------------------------------------------------------------------


class FakeModel:
    """The runtime model's interface; token ``t`` always predicts ``word_labels[t]``."""

    head = "token_classification"

    def __init__(self, directory, tokenizer, labels, word_labels, max_length=512):
        self.directory = str(directory)
        self.id2label = dict(enumerate(labels))
        self.config = {
            "max_sequence_length": max_length,
            "type_vocab_size": 2,
            "pad_token_id": 0,
            "num_labels": len(labels),
        }
        self.table = np.zeros((tokenizer.get_vocab_size(), len(labels)), dtype=np.float32)
        self.table[:, labels.index("O")] = 8.0
        for word, label in word_labels.items():
            token_id = tokenizer.token_to_id(word)
            assert token_id is not None, word
            self.table[token_id] = 0.0
            self.table[token_id, labels.index(label)] = 8.0
        self.calls = []

    def encode(self, input_ids, attention_mask=None, token_type_ids=None):
        input_ids = np.asarray(input_ids)
        self.calls.append((input_ids.copy(), np.asarray(attention_mask).copy()))
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    tok, _ = wordpiece_tokenizer(lowercase=True)
    directory = tmp_path_factory.mktemp("fake-ner")
    tok.save(str(directory / "tokenizer.json"))
    return directory, tok


def fake_pipeline(tokenizer_dir, labels, word_labels, max_length=512, **kwargs):
    directory, tok = tokenizer_dir
    model = FakeModel(directory, tok, labels, word_labels, max_length)
    return NerPipeline(model, **kwargs), model


def spans(results):
    return [[(e["label"], e["text"], e["start"], e["end"]) for e in ents] for ents in results]


# ---------------------------------------------------------------------------
# Schemes and grouping
# ---------------------------------------------------------------------------


def test_detect_scheme():
    assert detect_scheme(BIO_LABELS) == "BIO"
    assert detect_scheme(["O", "PER", "LOC"]) == "IO"
    assert detect_scheme(["O", "I-PER", "I-LOC"]) == "IO"
    assert detect_scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) == "BIOES"
    assert detect_scheme(["O", "S-LOC", "B-PER"]) == "BIOES"
    assert detect_scheme(["O", "B-PER", "I-PER", "L-PER", "U-PER"]) == "BILOU"
    assert detect_scheme(["LABEL_0", "LABEL_1"]) == "IO"


def test_split_tag():
    assert split_tag("B-PER", "BIO") == ("B", "PER")
    assert split_tag("I-PER", "BIO") == ("I", "PER")
    assert split_tag("O", "BIO") == ("I", "O")
    # transformers only knows B-/I-: under BIO an S- label is a bare type.
    assert split_tag("S-PER", "BIO") == ("I", "S-PER")
    assert split_tag("S-PER", "BIOES") == ("S", "PER")
    assert split_tag("E-PER", "BIOES") == ("E", "PER")
    assert split_tag("L-PER", "BILOU") == ("E", "PER")
    assert split_tag("U-PER", "BILOU") == ("S", "PER")
    assert split_tag("PER", "IO") == ("I", "PER")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        split_tag("B-PER", "XYZ")


def _tokens(labels):
    """(label, score, start, end) per token; token i spans [2i, 2i+1)."""
    return [(label, 0.5 + 0.01 * i, 2 * i, 2 * i + 1) for i, label in enumerate(labels)]


def _grouped(labels, scheme):
    return [(kind, start, end) for kind, _, start, end in group_entities(_tokens(labels), scheme)]


def test_group_bio_like_transformers():
    # The example of transformers' docs: (A, B-TAG), (B, I-TAG), (C, I-TAG), (D, B-TAG2),
    # (E, B-TAG2) -> ABC: TAG, D: TAG2, E: TAG2.
    labels = ["B-TAG", "I-TAG", "I-TAG", "B-TAG2", "B-TAG2"]
    assert _grouped(labels, "BIO") == [("TAG", 0, 5), ("TAG2", 6, 7), ("TAG2", 8, 9)]
    # I- after O or another type starts an entity; O runs form one "O" group.
    labels = ["O", "O", "I-PER", "I-PER", "I-LOC", "B-LOC", "I-LOC"]
    assert _grouped(labels, "BIO") == [
        ("O", 0, 3),
        ("PER", 4, 7),
        ("LOC", 8, 9),
        ("LOC", 10, 13),
    ]


def test_group_scores_are_means():
    groups = group_entities(_tokens(["B-PER", "I-PER", "I-PER", "O"]), "BIO")
    assert groups[0][0] == "PER"
    assert groups[0][1] == pytest.approx((0.50 + 0.51 + 0.52) / 3)
    assert groups[1][1] == pytest.approx(0.53)


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_group_skip_leaves_out_those_runs_only(scheme):
    """``skip`` (the pipeline's ignore_labels) drops runs of those types before scoring
    them; every other run is the same, score included."""
    labels = ["O", "O", "B-PER", "I-PER", "O", "B-LOC", "O", "O", "O", "B-ORG"]
    if scheme == "BIOES":
        labels = ["O", "O", "B-PER", "E-PER", "O", "S-LOC", "O", "O", "O", "S-ORG"]
    tokens = _tokens(labels)
    every = group_entities(tokens, scheme)
    assert group_entities(tokens, scheme, skip={"O"}) == [g for g in every if g[0] != "O"]
    assert group_entities(tokens, scheme, skip={"O", "LOC"}) == [
        g for g in every if g[0] not in ("O", "LOC")
    ]
    assert group_entities(tokens, scheme, skip=()) == every


# Label sets with the awkward cases: a bare label holding a dash, a prefixed "O" type, a
# type whose tags give different run labels under BIO ("X-Y" runs are "Y").
LABEL_SETS = {
    "BIO": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-O", "I-O", "MISC", "X-Y"],
    "IO": ["O", "PER", "I-PER", "LOC", "I-O", "X-Y"],
    "BIOES": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC", "B-LOC", "E-O", "S-O"],
    "BILOU": ["O", "B-PER", "I-PER", "L-PER", "U-PER", "U-LOC", "U-O"],
}


@pytest.mark.parametrize("scheme", sorted(LABEL_SETS))
@pytest.mark.parametrize("skip", [(), ("O",), ("O", "LOC"), ("PER", "Y"), ("I-PER", "O")])
@pytest.mark.parametrize("per_token", [False, True])
def test_token_entities_equal_grouping_every_token(scheme, skip, per_token):
    """token_entities skips the tokens whose runs are always left out; its entities are
    those of grouping every text token (strategy "simple"; "none": every token whose tag is
    not skipped), on random label sequences with special tokens among them."""
    labels = LABEL_SETS[scheme]
    rng = np.random.default_rng(len(skip) * 7 + len(scheme) + per_token)
    for _ in range(300):
        n = int(rng.integers(0, 24))
        # mostly the first label ("O"), as in real text
        ids = np.where(rng.random(n) < 0.5, 0, rng.integers(0, len(labels), n)).tolist()
        scores = rng.random(n).astype(np.float32)
        offsets = [(2 * j, 2 * j + 1) for j in range(n)]
        special = (rng.random(n) < 0.1).astype(int).tolist()
        tokens = [(labels[ids[j]], scores[j], *offsets[j]) for j in range(n) if not special[j]]
        if per_token:
            expected = [t for t in tokens if t[0] not in skip]
        else:
            expected = group_entities(tokens, scheme, skip=frozenset(skip))
        got = token_entities(
            ids, scores, offsets, special, labels, scheme, frozenset(skip), per_token=per_token
        )
        assert got == expected, (ids, special)


def test_group_io():
    labels = ["PER", "PER", "O", "LOC", "PER", "PER"]
    assert _grouped(labels, "IO") == [
        ("PER", 0, 3),
        ("O", 4, 5),
        ("LOC", 6, 7),
        ("PER", 8, 11),
    ]


def test_group_bioes():
    labels = ["B-PER", "E-PER", "S-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "S-ORG"]
    assert _grouped(labels, "BIOES") == [
        ("PER", 0, 3),
        ("PER", 4, 5),
        ("PER", 6, 7),
        ("LOC", 8, 13),
        ("O", 14, 15),
        ("ORG", 16, 17),
    ]
    # Lenient on invalid sequences: I-/E- without B- start an entity, a token after E- or
    # S- starts a new one, B- of another type cuts a run.
    labels = ["I-PER", "E-PER", "I-PER", "B-PER", "B-LOC", "E-LOC", "E-LOC"]
    assert _grouped(labels, "BIOES") == [
        ("PER", 0, 3),
        ("PER", 4, 5),
        ("PER", 6, 7),
        ("LOC", 8, 11),
        ("LOC", 12, 13),
    ]
    # transformers' BIO grouping would split B-PER E-PER apart.
    assert _grouped(["B-PER", "E-PER"], "BIO") == [("PER", 0, 1), ("PER", 2, 3)]


def test_group_bilou():
    labels = ["B-PER", "I-PER", "L-PER", "U-LOC", "U-LOC", "O"]
    assert _grouped(labels, "BILOU") == [
        ("PER", 0, 5),
        ("LOC", 6, 7),
        ("LOC", 8, 9),
        ("O", 10, 11),
    ]


# ---------------------------------------------------------------------------
# The pipeline on a fake model
# ---------------------------------------------------------------------------

SENTENCE = "Anna Lee met John at Acme Bank in Paris."


def test_pipeline_bio(tokenizer_dir):
    words = {
        "anna": "B-PER",
        "lee": "I-PER",
        "john": "B-PER",
        "acme": "B-ORG",
        "bank": "I-ORG",
        "paris": "B-LOC",
    }
    pipe, model = fake_pipeline(tokenizer_dir, BIO_LABELS, words)
    assert pipe.scheme == "BIO"
    (result,) = pipe([SENTENCE])
    assert [(e["label"], e["text"], e["start"], e["end"]) for e in result] == [
        ("PER", "Anna Lee", 0, 8),
        ("PER", "John", 13, 17),
        ("ORG", "Acme Bank", 21, 30),
        ("LOC", "Paris", 34, 39),
    ]
    confident = np.exp(8.0) / (np.exp(8.0) + 6)
    for entity in result:
        assert entity["score"] == pytest.approx(confident, rel=1e-6)
        assert type(entity["score"]) is float
    # One runtime call; [CLS] first and [SEP] last; attention mask all ones.
    ((ids, mask),) = model.calls
    assert ids[0, 0] == pipe.tokenizer.token_to_id("[CLS]")
    assert ids[0, -1] == pipe.tokenizer.token_to_id("[SEP]")
    assert mask.all()


def test_pipeline_bioes(tokenizer_dir):
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-ORG", "E-ORG", "S-LOC"]
    words = {
        "anna": "B-PER",
        "lee": "E-PER",
        "john": "S-PER",
        "acme": "B-ORG",
        "bank": "E-ORG",
        "paris": "S-LOC",
    }
    pipe, _ = fake_pipeline(tokenizer_dir, labels, words)
    assert pipe.scheme == "BIOES"
    texts = [SENTENCE, "anna lee john paris"]
    assert spans(pipe(texts)) == [
        [
            ("PER", "Anna Lee", 0, 8),
            ("PER", "John", 13, 17),
            ("ORG", "Acme Bank", 21, 30),
            ("LOC", "Paris", 34, 39),
        ],
        [("PER", "anna lee", 0, 8), ("PER", "john", 9, 13), ("LOC", "paris", 14, 19)],
    ]
    # Forcing BIO reproduces transformers' reading: E-/S- are bare types.
    pipe_bio, _ = fake_pipeline(tokenizer_dir, labels, words, scheme="BIO")
    assert [e["label"] for e in pipe_bio(["anna lee john"])[0]] == ["PER", "PER", "PER"]
    assert [e["text"] for e in pipe_bio(["anna lee john"])[0]] == ["anna", "lee", "john"]


def test_pipeline_io(tokenizer_dir):
    labels = ["O", "PER", "LOC"]
    pipe, _ = fake_pipeline(tokenizer_dir, labels, {"anna": "PER", "lee": "PER", "paris": "LOC"})
    assert pipe.scheme == "IO"
    assert spans(pipe(["anna lee in paris"])) == [
        [("PER", "anna lee", 0, 8), ("LOC", "paris", 12, 17)]
    ]


def test_pipeline_word_aggregation(tokenizer_dir):
    """'johnson' is john + ##son: first/average/max give the whole word one label."""
    words = {"john": "B-PER", "##son": "B-LOC", "paris": "B-LOC"}
    text = "johnson visited paris"
    simple, _ = fake_pipeline(tokenizer_dir, BIO_LABELS, words, aggregation_strategy="simple")
    assert spans(simple([text])) == [
        [("PER", "john", 0, 4), ("LOC", "son", 4, 7), ("LOC", "paris", 16, 21)]
    ]
    first, _ = fake_pipeline(tokenizer_dir, BIO_LABELS, words, aggregation_strategy="first")
    assert spans(first([text])) == [[("PER", "johnson", 0, 7), ("LOC", "paris", 16, 21)]]
    none, _ = fake_pipeline(tokenizer_dir, BIO_LABELS, words, aggregation_strategy="none")
    assert spans(none([text])) == [
        [("B-PER", "john", 0, 4), ("B-LOC", "son", 4, 7), ("B-LOC", "paris", 16, 21)]
    ]


def test_edge_cases(tokenizer_dir):
    pipe, model = fake_pipeline(tokenizer_dir, BIO_LABELS, {"paris": "B-LOC", "[UNK]": "B-ORG"})
    assert pipe([]) == []
    assert pipe(["", " ", "\n\t  \r\n"]) == [[], [], []]
    assert model.calls == []  # nothing to run
    text = "\x00\x07 paris 😀🙂 東京 paris\u200b!"
    (result,) = pipe([text])
    for entity in result:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert [e["text"] for e in result if e["label"] == "LOC"] == ["paris", "paris"]
    with pytest.raises(TypeError, match="list of texts"):
        pipe("paris")
    with pytest.raises(TypeError, match="text 1"):
        pipe(["paris", None])


def test_bad_arguments(tokenizer_dir):
    with pytest.raises(ValueError, match="aggregation_strategy"):
        fake_pipeline(tokenizer_dir, BIO_LABELS, {}, aggregation_strategy="mean")
    with pytest.raises(ValueError, match="stride"):
        fake_pipeline(tokenizer_dir, BIO_LABELS, {}, max_length=16, stride=14)
    with pytest.raises(ValueError, match="batch_size"):
        fake_pipeline(tokenizer_dir, BIO_LABELS, {}, batch_size=0)


# ---------------------------------------------------------------------------
# entities_to_tags
# ---------------------------------------------------------------------------

WORDS_TEXT = "Anna Lee met John at Acme Bank ."
WORD_SPANS = [(0, 4), (5, 8), (9, 12), (13, 17), (18, 20), (21, 25), (26, 30), (31, 32)]
ENTITIES = [
    {"label": "PER", "start": 0, "end": 8},
    {"label": "PER", "start": 13, "end": 17},
    {"label": "ORG", "start": 21, "end": 30},
]


def test_entities_to_tags_schemes():
    assert entities_to_tags(ENTITIES, WORD_SPANS) == [
        "B-PER",
        "I-PER",
        "O",
        "B-PER",
        "O",
        "B-ORG",
        "I-ORG",
        "O",
    ]
    assert entities_to_tags(ENTITIES, WORD_SPANS, scheme="IO") == [
        "I-PER",
        "I-PER",
        "O",
        "I-PER",
        "O",
        "I-ORG",
        "I-ORG",
        "O",
    ]
    assert entities_to_tags(ENTITIES, WORD_SPANS, scheme="BIOES") == [
        "B-PER",
        "E-PER",
        "O",
        "S-PER",
        "O",
        "B-ORG",
        "E-ORG",
        "O",
    ]
    assert entities_to_tags(ENTITIES, WORD_SPANS, scheme="BILOU")[:4] == [
        "B-PER",
        "L-PER",
        "O",
        "U-PER",
    ]


def test_entities_to_tags_overlaps():
    # An entity covering part of a word tags the word; adjacent entities of one type stay
    # apart (B- again); a word between two entities goes to the larger overlap.
    spans_ = [(0, 7), (8, 12), (13, 18)]  # "Johnson Lees Paris"
    entities = [
        {"label": "PER", "start": 0, "end": 4},  # "John" of "Johnson"
        {"label": "PER", "start": 8, "end": 12},
        {"label": "B-LOC", "start": 11, "end": 18},  # 1 char of "Lees", all of "Paris"
    ]
    assert entities_to_tags(entities, spans_) == ["B-PER", "B-PER", "B-LOC"]
    assert entities_to_tags([], spans_) == ["O", "O", "O"]
    assert entities_to_tags(ENTITIES, []) == []
    # A zero-width word inside an entity belongs to it.
    assert entities_to_tags([{"label": "X", "start": 0, "end": 5}], [(0, 3), (3, 3), (4, 5)]) == [
        "B-X",
        "I-X",
        "I-X",
    ]


def test_entities_to_tags_from_pipeline(tokenizer_dir):
    words = {"anna": "B-PER", "lee": "I-PER", "acme": "B-ORG", "bank": "I-ORG"}
    pipe, _ = fake_pipeline(tokenizer_dir, BIO_LABELS, words)
    (entities,) = pipe([WORDS_TEXT])
    assert entities_to_tags(entities, WORD_SPANS) == [
        "B-PER",
        "I-PER",
        "O",
        "O",
        "O",
        "B-ORG",
        "I-ORG",
        "O",
    ]


# ---------------------------------------------------------------------------
# ner_metrics (seqeval) against hand-computed numbers
# ---------------------------------------------------------------------------

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]


def test_ner_metrics_hand_computed():
    # gold: PER(0:0-2) LOC(0:3) ORG(1:0) PER(1:2); pred: PER(0:0-2) ORG(0:3) ORG(1:0)
    # true positives: PER(0:0-2), ORG(1:0) -> P = 2/3, R = 2/4, F1 = 4/7
    m = ner_metrics(GOLD, PRED)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["support"] == 4
    assert m["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "ORG": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
        "PER": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
    }
    assert all(type(m[k]) is float for k in ("precision", "recall", "f1"))
    assert ner_metrics(GOLD, GOLD)["f1"] == 1.0


def test_ner_metrics_strict_vs_lenient():
    gold = [["I-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"]]
    # Strict IOB2: an I- run without B- is no entity, so gold has only LOC.
    strict = ner_metrics(gold, pred)
    assert strict["support"] == 1
    assert strict["precision"] == pytest.approx(0.5) and strict["recall"] == 1.0
    # conlleval-style: I-PER I-PER is a PER entity equal to the predicted one.
    lenient = ner_metrics(gold, pred, mode=None)
    assert lenient["support"] == 2 and lenient["f1"] == 1.0


def test_ner_metrics_bioes():
    gold = [["S-PER", "B-LOC", "E-LOC"]]
    pred = [["S-PER", "B-LOC", "I-LOC"]]  # LOC never ends: no entity in strict IOBES
    m = ner_metrics(gold, pred, scheme="BIOES")
    assert (m["precision"], m["recall"]) == (1.0, 0.5)
    assert m["f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="gold sentence 0, token 0: tag 'S-PER'"):
        ner_metrics(gold, pred)  # S- does not fit IOB2


def test_ner_metrics_empty_and_errors():
    m = ner_metrics([["O", "O"]], [["O", "O"]])
    assert m == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "per_type": {}}
    with pytest.raises(ValueError, match="sentence 1: gold has 3 tags but pred has 2"):
        ner_metrics([["O"], ["O", "O", "O"]], [["O"], ["O", "O"]])
    with pytest.raises(ValueError, match="gold has 2 sentences but pred has 1"):
        ner_metrics([["O"], ["O"]], [["O"]])
    with pytest.raises(TypeError):
        ner_metrics(["O O"], [["O"]])


# ---------------------------------------------------------------------------
# Windows for long texts
# ---------------------------------------------------------------------------


def test_window_spans():
    assert window_spans(4, 4, 1) == [(0, 4)]
    assert window_spans(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(11, 4, 0) == [(0, 4), (4, 8), (7, 11)]
    assert window_spans(12, 6, 2) == [(0, 6), (4, 10), (6, 12)]
    for n in range(1, 60):
        for window, stride in [(5, 0), (5, 2), (8, 7), (9, 3)]:
            windows = window_spans(n, window, stride)
            covered = np.zeros(n, dtype=int)
            for a, b in windows:
                assert b - a == min(n, window)
                covered[a:b] += 1
            assert covered.min() >= 1
            for (_, b0), (a1, _) in zip(windows, windows[1:], strict=False):
                assert b0 - a1 >= stride  # consecutive windows share at least `stride`
    with pytest.raises(ValueError):
        window_spans(10, 4, 4)


def test_merge_takes_window_farthest_from_a_cut():
    windows = [(0, 6), (4, 10), (6, 12)]
    # Window k's rows: [k, position inside window].
    rows = [
        np.array([[k, j] for j in range(b - a)], dtype=np.float32)
        for k, (a, b) in enumerate(windows)
    ]
    merged = merge_window_logits(windows, rows, 12)
    # Token 4: 1 from w0's cut, 0 from w1's -> w0. Token 5: 0 vs 1 -> w1. Token 6: 2 in w1
    # vs 0 in w2 -> w1. Token 7: 2 vs 1 -> w1. Token 8: 1 vs 2 -> w2. Edges of the text are
    # no cuts: token 0 and token 11 count as far from any cut.
    assert merged[:, 0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    owner = merged[:, 0].astype(int)
    local = [t - windows[k][0] for t, k in enumerate(owner)]
    assert merged[:, 1].tolist() == local
    # Ties go to the earlier window: with stride 1 the shared token is at both cuts.
    merged = merge_window_logits([(0, 4), (3, 7)], [np.zeros((4, 1)), np.ones((4, 1))], 7)
    assert merged[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1]


LONG_TEXT = " ".join(
    ["Anna Lee met John Smith at Acme Bank in Paris, and they visited Berlin in 2019."] * 12
)


def test_fake_windows_equal_single_window(tokenizer_dir):
    """With context-free logits a windowed run must give exactly the one-window result."""
    words = {
        "anna": "B-PER",
        "lee": "I-PER",
        "smith": "I-PER",
        "acme": "B-ORG",
        "bank": "I-ORG",
        "paris": "B-LOC",
        "berlin": "B-LOC",
        "##s": "I-LOC",
    }
    for strategy in ("none", "simple", "first", "average", "max"):
        whole, _ = fake_pipeline(tokenizer_dir, BIO_LABELS, words, aggregation_strategy=strategy)
        windowed, model = fake_pipeline(
            tokenizer_dir,
            BIO_LABELS,
            words,
            max_length=16,
            stride=5,
            aggregation_strategy=strategy,
            batch_size=4,
        )
        expected = whole([LONG_TEXT, "paris", ""])
        assert windowed([LONG_TEXT, "paris", ""]) == expected
        assert len(expected[0]) > 40
        assert max(ids.shape[1] for ids, _ in model.calls) <= 16
        assert all(ids.shape[0] <= 4 for ids, _ in model.calls)
        # Every window is [CLS] ... [SEP] (the padded rows end in [PAD]).
        for ids, mask in model.calls:
            for row, row_mask in zip(ids, mask, strict=True):
                real = row[row_mask.astype(bool)]
                assert real[0] == windowed.tokenizer.token_to_id("[CLS]")
                assert real[-1] == windowed.tokenizer.token_to_id("[SEP]")


@pytest.fixture(scope="module")
def short_model(tmp_path_factory):
    """A real tiny BERT NER model whose max_position_embeddings is 32."""
    from transformers import AutoModelForTokenClassification

    model_dir = save_ner_model(
        tmp_path_factory.mktemp("ner-short") / "bert32", "bert", max_positions=32, seed=11
    )
    torch_model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    return model_dir, torch_model


def test_long_text_every_token_predicted(short_model):
    model_dir, _ = short_model
    pipe = NerPipeline(model_dir, aggregation_strategy="none", ignore_labels=())
    assert pipe.max_length == 32 and pipe.window == 30 and pipe.stride == 7
    encoding = pipe.tokenizer.encode(LONG_TEXT)
    assert len(encoding.ids) > 5 * pipe.max_length
    (tokens,) = pipe([LONG_TEXT])
    expected = [
        off
        for off, special in zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
        if not special
    ]
    assert [(t["start"], t["end"]) for t in tokens] == expected
    assert tokens[-1]["end"] == len(LONG_TEXT)
    assert {t["label"] for t in tokens} <= set(BIO_LABELS)


def test_long_text_stitches_windows_like_transformers(short_model):
    """Per-token scores of a long text are transformers' scores of the window where the
    token is farthest from a cut."""
    model_dir, torch_model = short_model
    pipe = NerPipeline(model_dir, aggregation_strategy="none", ignore_labels=(), stride=10)
    encoding = pipe.tokenizer.encode(LONG_TEXT, add_special_tokens=False)
    ids = encoding.ids
    windows = pipe.window_spans(len(ids))
    assert len(windows) > 5
    cls_id, sep_id = pipe.tokenizer.token_to_id("[CLS]"), pipe.tokenizer.token_to_id("[SEP]")
    per_window = []
    with torch.no_grad():
        for a, b in windows:
            window_ids = torch.tensor([[cls_id, *ids[a:b], sep_id]])
            logits = torch_model(input_ids=window_ids).logits[0, 1:-1].numpy()
            per_window.append(softmax(logits))
    # Expected owner of each token, computed independently of merge_window_logits.
    expected_scores, expected_labels = [], []
    for t in range(len(ids)):
        best = None
        for k, (a, b) in enumerate(windows):
            if not a <= t < b:
                continue
            left = t - a if a > 0 else len(ids)
            right = b - 1 - t if b < len(ids) else len(ids)
            if best is None or min(left, right) > best[0]:
                best = (min(left, right), k)
        probs = per_window[best[1]][t - windows[best[1]][0]]
        expected_labels.append(BIO_LABELS[int(probs.argmax())])
        expected_scores.append(float(probs.max()))
    (tokens,) = pipe([LONG_TEXT])
    assert [t["label"] for t in tokens] == expected_labels
    worst = max(abs(t["score"] - s) for t, s in zip(tokens, expected_scores, strict=True))
    print(f"stitched scores vs transformers per window: max diff {worst:.2e}")
    assert worst <= 1e-4


def test_fitting_text_is_one_window(short_model):
    """A text that fits gives the same result whatever the stride, alone or in a batch
    with long texts (scores within float32 noise of the batch composition)."""
    model_dir, _ = short_model
    text = "Anna Lee met John at Acme Bank in Paris."
    results = []
    for stride in (0, 7, 29):
        pipe = NerPipeline(model_dir, stride=stride)
        assert len(pipe.tokenizer.encode(text).ids) <= pipe.max_length
        results.append(pipe([text, LONG_TEXT])[0])
        results.append(pipe([text])[0])
    for other in results[1:]:
        assert [(e["label"], e["start"], e["end"]) for e in other] == [
            (e["label"], e["start"], e["end"]) for e in results[0]
        ]
        for a, b in zip(other, results[0], strict=True):
            assert abs(a["score"] - b["score"]) <= 1e-5


def test_100k_characters(short_model):
    model_dir, _ = short_model
    pipe = NerPipeline(model_dir, aggregation_strategy="simple")
    unit = "Anna Lee visited Berlin! Ünïcödé façade, 東京 😀 and Acme Bank (2019)\t\n"
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    start = time.perf_counter()
    (entities,) = pipe([text])
    elapsed = time.perf_counter() - start
    print(f"100k characters: {len(entities)} entities in {elapsed:.2f} s")
    assert elapsed < 20
    assert entities and entities[-1]["end"] > len(text) - len(unit)
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    assert all(a["end"] <= b["start"] for a, b in zip(entities, entities[1:], strict=False))


def test_model_argument_forms(short_model, tmp_path):
    import nlpengine
    from conftest import save_tiny_model

    model_dir, _ = short_model
    text = ["Anna Lee met John at Acme Bank in Paris."]
    expected = NerPipeline(model_dir, threads=1)(text)
    loaded = nlpengine.load(model_dir, threads=1)
    assert NerPipeline(loaded)(text) == expected
    assert NerPipeline((loaded, str(model_dir)))(text) == expected
    with pytest.raises(ValueError, match="threads"):
        NerPipeline(loaded, threads=2)
    base_dir, _ = save_tiny_model(tmp_path, "bert")
    with pytest.raises(ValueError, match="token-classification"):
        NerPipeline(base_dir)
