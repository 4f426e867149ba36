"""NerPipeline against transformers' token-classification pipeline.

Each case builds a tiny seeded ``*ForTokenClassification`` model (bert, roberta, distilbert,
electra) whose classifier is rescaled so that every BIO label wins somewhere, plus a real
tokenizer.json made here (WordPiece with ## pieces for the BERT-likes, byte-level BPE with
<s>/</s>, add_prefix_space and trim_offsets for RoBERTa), saved with a
``PreTrainedTokenizerFast`` so transformers loads the same directory. For every aggregation
strategy the entities must agree: same labels, offsets and texts, scores within 1e-4.
"""

from __future__ import annotations

import warnings

import pytest
from conftest_ner import BIO_LABELS, save_ner_model
from nlpengine_ner import NerPipeline

TOL = 1e-4
STRATEGIES = ["none", "simple", "first", "average", "max"]
ARCHS = ["bert", "roberta", "distilbert", "electra"]

#: Our own sentences: names split into subwords, punctuation, digits, accents, other
#: scripts, emoji, control characters, empty and blank texts, and special tokens typed in
#: the text (text to the pipeline, skipped as entities, as transformers skips them).
TEXTS = [
    "John Smith visited New York and Paris in 2019.",
    "Mary Lee works at Acme Bank, Berlin!",
    "Émile met Zoë at the café in São Paulo 😀 yesterday.",
    "Wilkinsonville-on-Thames & Co. reported $5,000 profits (42%).",
    "the university of berlin said: anna lee, johnson & smithson met at the riverland.",
    "  leading and trailing spaces   ",
    "Numbers 3.14159 and 1,000,000 and dates like 2024-01-31.",
    "Tab\tseparated\nnew lines\r\nand a bell \x07 char",
    "東京 and Москва are cities; Straße in München.",
    "A",
    "",
    "   ",
    "Parisian Berliners visited Johnstonville, Acmeland and Yorkshire.",
    "[CLS] Anna Lee [SEP] met <s> John Smith </s> in Berlin [SEP]",
]


def _transformers_pipeline(model_dir):
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.pipeline(
        "token-classification", model=str(model_dir), tokenizer=str(model_dir), device="cpu"
    )


@pytest.fixture(scope="module", params=ARCHS)
def bio_model(request, tmp_path_factory):
    arch = request.param
    model_dir = save_ner_model(tmp_path_factory.mktemp(f"ner-{arch}") / arch, arch, seed=3)
    return arch, model_dir, _transformers_pipeline(model_dir)


def _reference(hf_pipe, texts, strategy, **kwargs):
    with warnings.catch_warnings():
        # transformers warns once per token when its tokenizer has no subword marker.
        warnings.simplefilter("ignore", UserWarning)
        results = hf_pipe(texts, aggregation_strategy=strategy, **kwargs)
    out = []
    for text, entities in zip(texts, results, strict=True):
        rows = []
        for ent in entities:
            label = ent["entity"] if strategy == "none" else ent["entity_group"]
            span = text[ent["start"] : ent["end"]]
            if not span.strip():
                continue  # NerPipeline drops empty and whitespace-only entities on purpose
            rows.append((label, ent["start"], ent["end"], span, float(ent["score"])))
        out.append(rows)
    return out


def _ours(pipe, texts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = pipe(texts)
    out = []
    for entities in results:
        rows = []
        for ent in entities:
            assert set(ent) == {"label", "text", "start", "end", "score"}
            assert type(ent["score"]) is float and 0.0 <= ent["score"] <= 1.0
            assert type(ent["start"]) is int and type(ent["end"]) is int
            rows.append((ent["label"], ent["start"], ent["end"], ent["text"], ent["score"]))
        out.append(rows)
    return out


def assert_same_entities(ours, reference, texts, label):
    worst = 0.0
    for i, (mine, ref) in enumerate(zip(ours, reference, strict=True)):
        assert [r[:4] for r in mine] == [r[:4] for r in ref], (
            f"{label}: text {i} {texts[i]!r}\nours {mine}\nref  {ref}"
        )
        for a, b in zip(mine, ref, strict=True):
            worst = max(worst, abs(a[4] - b[4]))
    print(f"{label}: {sum(map(len, ours))} entities, max score diff {worst:.2e}")
    assert worst <= TOL, f"{label}: score diff {worst:.2e} exceeds {TOL:.0e}"


def _make_pipeline(model_dir, strategy, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return NerPipeline(model_dir, aggregation_strategy=strategy, **kwargs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_transformers(bio_model, strategy):
    arch, model_dir, hf_pipe = bio_model
    pipe = _make_pipeline(model_dir, strategy)
    assert pipe.scheme == "BIO"
    longest = max(len(pipe.tokenizer.encode(t).ids) for t in TEXTS)
    assert longest <= pipe.max_length, "the parity texts must fit one window"
    ours = _ours(pipe, TEXTS)
    reference = _reference(hf_pipe, TEXTS, strategy)
    assert_same_entities(ours, reference, TEXTS, f"{arch}/{strategy}")
    assert ours[TEXTS.index("")] == [] and ours[TEXTS.index("   ")] == []
    if strategy in ("simple", "none"):
        # The random model must exercise the decoder: entities of every type.
        kinds = {row[0].split("-")[-1] for rows in ours for row in rows}
        assert kinds == {"PER", "LOC", "ORG"}, kinds


def test_batching_keeps_order(bio_model):
    """Small batches (sorted by length across the call) give the same results in order
    (scores may move in the last float32 bits with the batch composition)."""
    arch, model_dir, _ = bio_model
    texts = TEXTS * 2
    one = _ours(_make_pipeline(model_dir, "simple", batch_size=1), texts)
    many = _ours(_make_pipeline(model_dir, "simple", batch_size=3), texts)
    assert_same_entities(many, one, texts, f"{arch}/batch 3 vs 1")
    assert_same_entities(many[len(TEXTS) :], many[: len(TEXTS)], TEXTS, f"{arch}/repeat")


def test_ignore_labels_like_transformers(bio_model):
    """ignore_labels=[] keeps the O groups; a type in ignore_labels is dropped."""
    arch, model_dir, hf_pipe = bio_model
    for strategy, ignore in [("simple", []), ("first", ["O", "PER"]), ("none", ["O", "B-LOC"])]:
        pipe = _make_pipeline(model_dir, strategy, ignore_labels=ignore)
        reference = _reference(hf_pipe, TEXTS, strategy, ignore_labels=ignore)
        assert_same_entities(_ours(pipe, TEXTS), reference, TEXTS, f"{arch}/{strategy}/{ignore}")


@pytest.mark.parametrize("labels", [["O", "PER", "LOC", "ORG"], ["O", "I-PER", "I-LOC"]])
def test_io_labels_match_transformers(tmp_path, labels):
    """IO label sets (bare types or I- only) group exactly as transformers groups them."""
    model_dir = save_ner_model(tmp_path / "io", "bert", labels=labels, seed=5)
    hf_pipe = _transformers_pipeline(model_dir)
    for strategy in STRATEGIES:
        pipe = _make_pipeline(model_dir, strategy)
        assert pipe.scheme == "IO"
        reference = _reference(hf_pipe, TEXTS, strategy)
        assert_same_entities(_ours(pipe, TEXTS), reference, TEXTS, f"io/{strategy}")


def test_bioes_tokens_match_transformers(tmp_path):
    """A BIOES model: token-level results (strategy none) equal transformers'; the grouped
    ones differ on purpose (transformers splits B-X E-X) and are checked in
    test_ner_decoding.py."""
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    model_dir = save_ner_model(tmp_path / "bioes", "distilbert", labels=labels, seed=7)
    hf_pipe = _transformers_pipeline(model_dir)
    pipe = _make_pipeline(model_dir, "none")
    assert pipe.scheme == "BIOES"
    reference = _reference(hf_pipe, TEXTS, "none")
    assert_same_entities(_ours(pipe, TEXTS), reference, TEXTS, "bioes/none")


def test_labels_cover_bio_set(bio_model):
    """The random model exercises the decoder: O and several B- and I- tags win."""
    _, model_dir, _ = bio_model
    pipe = _make_pipeline(model_dir, "none", ignore_labels=[])
    tags = {row[0] for rows in _ours(pipe, TEXTS) for row in rows}
    assert tags <= set(BIO_LABELS)
    assert "O" in tags, tags
    assert sum(t.startswith("B-") for t in tags) >= 2, tags
    assert sum(t.startswith("I-") for t in tags) >= 2, tags
