"""The recommendation pipeline against transformers: bi-encoder scores from pooled and
normalised hidden states, cross-encoder scores from sequence-classification logits; the
item-embedding cache; bad files and requests."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_recommendation import (
    ITEMS,
    data_files,
    reference_embeddings,
    reference_pair_logits,
    save_bi_encoder,
    save_cross_encoder,
    write_jsonl,
)
from nlpengine.io import InputError
from nlpengine.tasks import RecordError
from nlpengine_recommendation import RecommendationPipeline
from nlpengine_recommendation.profile import user_text
from nlpengine_recommendation.request import parse_request

TEXTS = {str(item["item_id"]): item["text"] for item in ITEMS}
IDS = [item["item_id"] for item in ITEMS]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return data_files(tmp_path_factory.mktemp("rec-data"))


def _scores(result) -> dict:
    return {str(x["item_id"]): x["score"] for x in result["items"]}


def _check(result, expected: dict, tol=1e-4):
    got = _scores(result)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert abs(got[key] - value) <= tol, (key, got[key], value)
    ordered = [x["score"] for x in result["items"]]
    assert ordered == sorted(ordered, reverse=True)


@pytest.mark.parametrize(
    ("pooling", "normalize", "score"),
    [
        ("mean", True, "cosine"),
        ("cls", False, "dot"),
        ("max", False, "cosine"),
        (None, False, "dot"),
    ],
)
def test_bi_encoder_scores_equal_numpy_from_transformers(
    tmp_path, files, pooling, normalize, score
):
    items, interactions = files
    model_dir, model = save_bi_encoder(tmp_path / "bi", pooling, normalize)
    pipe = RecommendationPipeline(
        model_dir, items=items, interactions=interactions, score=score, top_k=0, batch_size=3
    )
    assert pipe.mode == "bi-encoder"
    max_len = 48 if pooling else 64
    mode = pooling or "mean"
    vectors = reference_embeddings(model_dir, model, [i["text"] for i in ITEMS], mode, normalize,
                                   max_len)  # fmt: skip
    by_id = {str(i): v for i, v in zip(IDS, vectors, strict=True)}

    def expected(user, candidates):
        if score == "cosine":
            user = user / np.linalg.norm(user)
        out = {}
        for c in candidates:
            v = by_id[c] / np.linalg.norm(by_id[c]) if score == "cosine" else by_id[c]
            out[c] = float(v @ user)
        return out

    requests = [
        # u1's history: items 1 (4 stars), 3 (1 star), 5 (5 stars); all other items ranked.
        parse_request({"user_id": "u1"}),
        # An explicit history with a rating and a bare id; given candidates.
        parse_request({"history": [{"item_id": 2, "rating": 2.0}, 6], "candidates": [1, "m4", 8]}),
        # A profile text.
        parse_request({"text": "robots and space pirates", "k": 2}),
        # u2's label-0 item is neither in the profile nor among the candidates.
        parse_request({"user_id": "u2"}),
    ]
    results = pipe(requests)
    u1 = (4 * by_id["1"] + 1 * by_id["3"] + 5 * by_id["5"]) / 10
    _check(results[0], expected(u1, ["2", "m4", "6", "7", "8"]))
    assert results[0]["user_id"] == "u1"
    explicit = (2 * by_id["2"] + 1 * by_id["6"]) / 3
    _check(results[1], expected(explicit, ["1", "m4", "8"]))
    profile = reference_embeddings(model_dir, model, ["robots and space pirates"], mode,
                                   normalize, max_len)[0]  # fmt: skip
    all_scores = expected(profile, list(by_id))
    best = sorted(all_scores, key=lambda c: -all_scores[c])[:2]
    _check(results[2], {c: all_scores[c] for c in best})
    u2 = (by_id["2"] + by_id["6"]) / 2
    _check(results[3], expected(u2, ["1", "3", "5", "7", "8"]))


def test_item_embeddings_are_computed_once_per_job(tmp_path, files):
    items, interactions = files
    model_dir, _ = save_bi_encoder(tmp_path / "bi")
    pipe = RecommendationPipeline(model_dir, items=items, interactions=interactions, top_k=3)
    embedded: list[str] = []
    inner = pipe.cache._embed

    def counting(texts):
        embedded.extend(texts)
        return inner(texts)

    pipe.cache._embed = counting
    first = pipe([parse_request({"history": [1, 2], "candidates": [3, 5]})])
    assert sorted(embedded) == sorted(TEXTS[k] for k in ("1", "2", "3", "5"))
    again = pipe([parse_request({"history": [1, 2], "candidates": [3, 5]})])
    assert again == first and len(embedded) == 4  # nothing encoded again
    pipe([parse_request({"user_id": "u1"}), parse_request({"user_id": "u2"})])
    assert sorted(embedded) == sorted(TEXTS.values())  # each item exactly once
    assert pipe.cache.encoded == len(ITEMS)


def test_cross_encoder_scores_equal_transformers_logits(tmp_path, files):
    items, interactions = files
    model_dir, model = save_cross_encoder(tmp_path / "cross")
    pipe = RecommendationPipeline(model_dir, items=items, interactions=interactions, top_k=0,
                                  batch_size=2)  # fmt: skip
    assert pipe.mode == "cross-encoder"
    results = pipe(
        [
            parse_request({"user_id": "u1"}),
            parse_request({"text": "a profile: likes dramas", "candidates": [7, 8, 1]}),
        ]
    )
    u1_text = user_text([TEXTS["1"], TEXTS["3"], TEXTS["5"]])
    assert u1_text.startswith(TEXTS["5"])  # the most recent item first
    candidates = ["2", "m4", "6", "7", "8"]
    logits = reference_pair_logits(model_dir, model, [(u1_text, TEXTS[c]) for c in candidates])
    _check(results[0], dict(zip(candidates, logits, strict=True)))
    candidates = ["7", "8", "1"]
    pairs = [("a profile: likes dramas", TEXTS[c]) for c in candidates]
    _check(results[1], dict(zip(candidates, reference_pair_logits(model_dir, model, pairs),
                                strict=True)))  # fmt: skip


def test_mode_must_match_the_model_directory(tmp_path, files):
    from nlpengine.errors import ModelError

    items, _ = files
    model_dir, _ = save_bi_encoder(tmp_path / "bi")
    with pytest.raises(ModelError, match="cross-encoder"):
        RecommendationPipeline(model_dir, items=items, mode="cross-encoder")


def test_bad_files_name_file_and_line(tmp_path, files):
    items, _ = files
    model_dir, _ = save_bi_encoder(tmp_path / "bi")
    bad_items = tmp_path / "bad_items.jsonl"
    bad_items.write_text('{"item_id": 1, "text": "ok"}\n{"item_id": 2}\n', "utf-8")
    with pytest.raises(InputError, match=r"bad_items\.jsonl:2: missing text field 'text'"):
        RecommendationPipeline(model_dir, items=bad_items)
    dup = write_jsonl(tmp_path / "dup.jsonl", [ITEMS[0], ITEMS[1], ITEMS[0]])
    with pytest.raises(InputError, match=r"dup\.jsonl:3: item_id 1 already given on line 1"):
        RecommendationPipeline(model_dir, items=dup)
    unknown = write_jsonl(tmp_path / "inter.jsonl", [{"user_id": 1, "item_id": 1},
                                                      {"user_id": 1, "item_id": 99}])  # fmt: skip
    with pytest.raises(InputError, match=r"inter\.jsonl:2: item_id 99 is not in"):
        RecommendationPipeline(model_dir, items=items, interactions=unknown)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"user_id": 1, "item_id": 1}\n{"user_id": \n', "utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl:2: not valid JSON"):
        RecommendationPipeline(model_dir, items=items, interactions=broken)


def test_bad_requests(tmp_path, files):
    items, interactions = files
    for record, message in [
        ({}, "needs 'user_id', 'history' or a profile"),
        ({"user_id": 1.5}, "'user_id' must be a string or an integer"),
        ({"history": "1,2"}, "'history' must be a list"),
        ({"history": [{"item_id": 1, "rating": "good"}]}, r"history\[0\]: field 'rating'"),
        ({"user_id": "u1", "candidates": [None]}, r"candidates\[0\]"),
        ({"user_id": "u1", "k": -1}, "'k' must be"),
        ({"text": 5}, "'text' must be a string"),
        ({"text": "robots \udc80"}, "'text' holds an unpaired surrogate"),
    ]:
        with pytest.raises(RecordError, match=message):
            parse_request(record)
    model_dir, _ = save_bi_encoder(tmp_path / "bi")
    pipe = RecommendationPipeline(model_dir, items=items, interactions=interactions)
    with pytest.raises(ValueError, match="item_id '99' is not in"):
        pipe([parse_request({"user_id": "u1", "candidates": [99]})])
    with pytest.raises(ValueError, match="user_id 'nobody' has no interactions"):
        pipe([parse_request({"user_id": "nobody"})])
    with pytest.raises(ValueError, match="no item with a positive rating"):
        pipe([parse_request({"history": [{"item_id": 1, "label": 0}]})])
