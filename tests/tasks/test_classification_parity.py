"""ClassificationPipeline against transformers' text-classification pipeline.

Each case builds a tiny seeded ``*ForSequenceClassification`` model and a real
tokenizer.json made here with the ``tokenizers`` library (WordPiece with a
[CLS]/[SEP] template for the BERT-likes, byte-level BPE with <s>/</s> for RoBERTa),
saved next to a ``PreTrainedTokenizerFast`` so transformers loads the same directory.
Labels must come out in the same order with scores within 1e-4.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from conftest import _randomize_parameters, save_tiny_model, tiny_config

# Test the plugin's source in this checkout, not a copy installed into site-packages.
_PLUGIN_SRC = Path(__file__).resolve().parents[2] / "plugins" / "classification"
if _PLUGIN_SRC.is_dir() and str(_PLUGIN_SRC) not in sys.path:
    sys.path.insert(0, str(_PLUGIN_SRC))

from nlpengine_classification import ClassificationPipeline  # noqa: E402
from nlpengine_classification.pipeline import default_function_to_apply  # noqa: E402

TOL = 1e-4

# ---------------------------------------------------------------------------
# Tokenizers built from scratch
# ---------------------------------------------------------------------------

_WORDS = (
    "the a an this that it is was were be not very really quite so too and but or of to in "
    "on with for film movie plot acting music story ending good great fine bad awful dull "
    "boring lovely i you we they love hate liked"
).split()

#: Our own sentences: short, long, punctuated, non-ASCII, empty.
TEXTS = [
    "The film was very good.",
    "an awful, boring movie!",
    "",
    "I liked the music but the plot was dull",
    "Not bad.",
    "we love it",
    "ünïcödé façade — 東京 🙂 text",
    "good good good good good good good great great fine lovely",
    "?",
    "They hate that ending, really.",
    "the acting was fine and the story was quite lovely, but the ending was too dull",
]

PAIRS = [
    ("Is the movie good?", "It was great."),
    ("the plot", "very boring and dull, really"),
    ("", "only the second text"),
    ("only the first text", "."),
    ("We loved the music.", "They hated the acting!"),
    ("a", "b c d e f g"),
]

#: Repeated enough to exceed 64 tokens.
LONG_TEXT = " ".join(["the story was good but the ending was awful"] * 12)


def _bert_like_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = specials + list(".,!?'-") + letters + ["##" + c for c in letters] + _WORDS
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    assert len(vocab) <= 120, len(vocab)
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    special = dict(
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    return tok, special


def _roberta_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(_WORDS)] + TEXTS + [a + " " + b for a, b in PAIRS]
    tok.train_from_iterator(corpus * 3, trainer=trainer)
    assert tok.token_to_id("<s>") == 0 and tok.token_to_id("<pad>") == 1
    assert tok.token_to_id("</s>") == 2
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    special = dict(
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    return tok, special


# ---------------------------------------------------------------------------
# Model directories
# ---------------------------------------------------------------------------

MULTI = "multi_label_classification"

#: (case id, arch, label names, problem_type, seed, head weight scale); the scales keep
#: scores away from both uniform and saturated.
CASES = [
    ("bert-2", "bert", ["negative", "positive"], None, 1, 3.0),
    ("roberta-3", "roberta", ["neg", "neutral", "pos"], None, 2, 3.0),
    ("distilbert-3", "distilbert", ["sports", "politics", "science"], None, 3, 1.0),
    ("electra-2", "electra", ["no", "yes"], "single_label_classification", 4, 1.0),
    ("bert-multilabel", "bert", ["plot", "acting", "music", "end"], MULTI, 5, 0.6),
    ("electra-1", "electra", ["relevant"], None, 6, 0.4),
]


def build_classifier_dir(
    root: Path, arch: str, labels, problem_type, seed: int, scale: float = 1.0
) -> Path:
    """A seeded tiny sequence classifier with a tokenizer, saved for both libraries."""
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    tok, special = _roberta_tokenizer() if arch == "roberta" else _bert_like_tokenizer()
    overrides = dict(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    if problem_type is not None:
        overrides["problem_type"] = problem_type
    if arch == "roberta":
        overrides["vocab_size"] = tok.get_vocab_size()
    cfg = tiny_config(arch, **overrides)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(cfg)
    _randomize_parameters(model, seed)
    with torch.no_grad():  # head weights scaled so scores are neither uniform nor saturated
        for name, param in model.named_parameters():
            if name.startswith(("classifier", "pre_classifier")) and name.endswith("weight"):
                param.mul_(scale)
    model.eval()
    model_dir = root / f"{arch}-{len(labels)}-{seed}"
    model.save_pretrained(model_dir)

    input_names = ["input_ids", "attention_mask"]
    if cfg.model_type != "distilbert":
        input_names.insert(1, "token_type_ids")
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=nlpengine.load(model_dir).config["max_sequence_length"],
        model_input_names=input_names,
        **special,
    )
    hf_tok.save_pretrained(model_dir)
    assert (model_dir / "tokenizer.json").is_file()
    return model_dir


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request, tmp_path_factory):
    from transformers import pipeline

    model_dir = build_classifier_dir(tmp_path_factory.mktemp("cls"), *request.param[1:])
    labels = request.param[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir))
    return model_dir, hf, labels


def assert_same_results(ours, theirs, label: str, tol: float = TOL) -> float:
    """Same labels in the same order, scores within ``tol``; returns the max difference."""
    assert len(ours) == len(theirs), f"{label}: {len(ours)} results vs {len(theirs)}"
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if isinstance(b, dict):
            b = [b]
        assert [r["label"] for r in a] == [r["label"] for r in b], f"{label}[{i}]: {a} vs {b}"
        for ra, rb in zip(a, b, strict=True):
            assert isinstance(ra["score"], float)
            worst = max(worst, abs(ra["score"] - rb["score"]))
    print(f"{label}: max score diff {worst:.3e} (tolerance {tol:.0e})")
    assert worst <= tol, f"{label}: max score diff {worst:.3e} exceeds {tol:.0e}"
    return worst


# ---------------------------------------------------------------------------
# Parity
# ---------------------------------------------------------------------------


def test_scores_are_informative(case):
    # Guards the test models themselves: near-uniform scores would let bugs through.
    model_dir, _, labels = case
    clf = ClassificationPipeline(model_dir, top_k=None, function_to_apply="none")
    logits = clf.logits(TEXTS + PAIRS)
    assert np.ptp(logits, axis=0).min() > 0.1
    if len(labels) > 1:
        assert np.ptp(logits, axis=1).min() > 1e-3  # no near-ties to flip the label order


def test_tokenization_matches_transformers(case):
    model_dir, hf, _ = case
    ours = ClassificationPipeline(model_dir).tokenizer
    for text in TEXTS:
        assert ours.encode(text).ids == hf.tokenizer(text)["input_ids"], text
    for a, b in PAIRS:
        enc = ours.encode(a, b)
        ref = hf.tokenizer(a, text_pair=b)
        assert enc.ids == ref["input_ids"], (a, b)
        if "token_type_ids" in ref:
            assert enc.type_ids == ref["token_type_ids"], (a, b)


def test_empty_text_pair_keeps_pair_template(case):
    # transformers' pipeline tokenizes one example at a time and drops a falsy text_pair,
    # while its batched call (the usual training path) keeps the pair template; a pair is
    # what the caller asked for, so we keep it.
    model_dir, hf, _ = case
    ours = ClassificationPipeline(model_dir).tokenizer.encode("only the first text", "")
    ref = hf.tokenizer(["only the first text"], text_pair=[""])
    assert ours.ids == ref["input_ids"][0]
    single = hf.tokenizer("only the first text")["input_ids"]
    assert len(ours.ids) == len(single) + (2 if "roberta" in model_dir.name else 1)


@pytest.mark.parametrize("top_k", [1, 2, None])
def test_single_texts(case, top_k):
    model_dir, hf, labels = case
    clf = ClassificationPipeline(model_dir, top_k=top_k, batch_size=4)
    ours = clf(TEXTS)
    theirs = hf(TEXTS, top_k=top_k)
    assert_same_results(ours, theirs, f"texts top_k={top_k}")
    expected_len = len(labels) if top_k is None else min(top_k, len(labels))
    assert all(len(r) == expected_len for r in ours)
    assert all(r[0]["score"] >= r[-1]["score"] for r in ours)


@pytest.mark.parametrize("top_k", [1, None])
def test_text_pairs(case, top_k):
    model_dir, hf, _ = case
    clf = ClassificationPipeline(model_dir, top_k=top_k, batch_size=2)
    as_dicts = [{"text": a, "text_pair": b} for a, b in PAIRS]
    theirs = hf(as_dicts, top_k=top_k)
    assert_same_results(clf(PAIRS), theirs, f"pairs (tuples) top_k={top_k}")
    assert_same_results(clf(as_dicts), theirs, f"pairs (dicts) top_k={top_k}")


def test_mixed_singles_and_pairs_keep_order(case):
    model_dir, hf, _ = case
    inputs = [TEXTS[0], PAIRS[0], {"text": TEXTS[1]}, TEXTS[3], PAIRS[4], TEXTS[2]]
    as_hf = [x if isinstance(x, (str, dict)) else {"text": x[0], "text_pair": x[1]} for x in inputs]
    ours = ClassificationPipeline(model_dir, top_k=None, batch_size=2)(inputs)
    theirs = [hf(x, top_k=None) for x in as_hf]
    assert_same_results(ours, theirs, "mixed inputs")


@pytest.mark.parametrize("function", ["sigmoid", "softmax", "none"])
def test_explicit_function_to_apply(case, function):
    model_dir, hf, _ = case
    clf = ClassificationPipeline(model_dir, top_k=None, function_to_apply=function)
    theirs = hf(TEXTS[:5], top_k=None, function_to_apply=function)
    assert_same_results(clf(TEXTS[:5]), theirs, f"function_to_apply={function}")


def test_truncation_matches_transformers(case):
    model_dir, hf, _ = case
    inputs = [TEXTS[0], LONG_TEXT, (LONG_TEXT, "the ending"), ("short", LONG_TEXT), TEXTS[1]]
    clf = ClassificationPipeline(model_dir, top_k=None, batch_size=2)
    with pytest.warns(UserWarning, match=r"input index 1, 2, 3\b") as record:
        ours = clf(inputs)
    assert len(record) == 1 and record[0].filename == __file__  # once, at the caller
    as_hf = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in inputs]
    theirs = [hf(x, top_k=None, truncation=True) for x in as_hf]
    assert_same_results(ours, theirs, "truncated inputs")


def test_batching_does_not_change_scores(case):
    model_dir, _, _ = case
    inputs = TEXTS + PAIRS
    one = ClassificationPipeline(model_dir, top_k=None, batch_size=1)(inputs)
    many = ClassificationPipeline(model_dir, top_k=None, batch_size=64)(inputs)
    assert_same_results(many, one, "batch 64 vs batch 1", tol=1e-5)


def test_default_score_functions():
    assert default_function_to_apply({}, 2) == "softmax"
    assert default_function_to_apply({}, 1) == "sigmoid"
    assert default_function_to_apply({"problem_type": "multi_label_classification"}, 5) == "sigmoid"
    assert default_function_to_apply({"problem_type": "single_label_classification"}, 3) == (
        "softmax"
    )
    assert default_function_to_apply({"problem_type": "regression"}, 1) == "none"


# ---------------------------------------------------------------------------
# Behaviour beyond parity
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    return build_classifier_dir(
        tmp_path_factory.mktemp("cls-bert"), "bert", ["negative", "positive"], None, 11
    )


def test_multilabel_scores_are_independent_sigmoids(tmp_path):
    labels = ["a", "b", "c"]
    model_dir = build_classifier_dir(tmp_path, "bert", labels, "multi_label_classification", 12)
    clf = ClassificationPipeline(model_dir, top_k=None)
    assert clf.function_to_apply == "sigmoid"
    logits = clf.logits(TEXTS)
    expected = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    for row, result in zip(expected, clf(TEXTS), strict=True):
        by_label = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([by_label[x] for x in labels], row, atol=1e-7)


def test_loaded_model_and_single_input(bert_dir):
    model = nlpengine.load(bert_dir, threads=1)
    clf = ClassificationPipeline(model, top_k=5)
    from_dir = ClassificationPipeline(bert_dir, top_k=5, threads=1)
    assert clf("a good film") == clf(["a good film"])
    assert len(clf("a good film")[0]) == 2  # top_k above num_labels returns every label
    assert_same_results(clf(TEXTS), from_dir(TEXTS), "loaded model vs directory", tol=1e-6)
    assert clf([]) == []
    with pytest.raises(ValueError, match="threads"):
        ClassificationPipeline(model, threads=2)


def test_truncation_off_raises(bert_dir):
    clf = ClassificationPipeline(bert_dir, truncation=False)
    with pytest.raises(ValueError, match=r"input 1\b.*maximum of 64 tokens"):
        clf(["fine", LONG_TEXT])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf(["fine", "short and good"])  # no warning when nothing is cut


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ([123], TypeError, "input 0"),
        (["ok", ("a", "b", "c")], TypeError, "input 1"),
        ([{"txt": "x"}], ValueError, "'text' key"),
        ([(1, "b")], TypeError, "input 0"),
    ],
)
def test_bad_inputs(bert_dir, bad, error, match):
    with pytest.raises(error, match=match):
        ClassificationPipeline(bert_dir)(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(top_k=0), "top_k"),
        (dict(batch_size=0), "batch_size"),
        (dict(function_to_apply="relu"), "function_to_apply"),
    ],
)
def test_bad_options(bert_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassificationPipeline(bert_dir, **kwargs)


def test_model_without_classification_head(tmp_path):
    model_dir, _ = save_tiny_model(tmp_path, "bert")
    with pytest.raises(nlpengine.ModelError, match="ForSequenceClassification"):
        ClassificationPipeline(model_dir)
