"""The runtime's task heads against transformers: logits of *ForTokenClassification and
*ForSequenceClassification checkpoints, loaded by their Hugging Face weight names."""

from __future__ import annotations

import nlpengine
import numpy as np
import pytest
import torch
from conftest import ARCH_CONFIGS, tiny_config

#: Max abs difference of logits between nlpengine and transformers (float32).
TOLERANCE = 1e-4

HEADS = {
    "token_classification": "AutoModelForTokenClassification",
    "sequence_classification": "AutoModelForSequenceClassification",
}


@pytest.mark.parametrize("arch", sorted(ARCH_CONFIGS))
@pytest.mark.parametrize("head", sorted(HEADS))
def test_head_logits_match_transformers(tmp_path, arch, head):
    import transformers

    labels = ["O", "B-X", "I-X", "B-Y", "I-Y"]
    config = tiny_config(
        arch, id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)}
    )
    torch.manual_seed(11)
    model = getattr(transformers, HEADS[head]).from_config(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(tmp_path)

    rng = np.random.default_rng(5)
    pad = config.pad_token_id
    ids = rng.integers(3, config.vocab_size, size=(3, 11))
    ids[ids == pad] = pad + 2
    mask = np.ones_like(ids)
    for row, length in enumerate((11, 6, 2)):
        mask[row, length:] = 0
        ids[row, length:] = pad
    engine = nlpengine.load(tmp_path)
    assert engine.head == head
    assert engine.id2label == dict(enumerate(labels))
    got = engine.encode(ids, mask).logits
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    expected = expected.numpy()
    assert got.shape == expected.shape and got.dtype == np.float32
    if head == "token_classification":
        diff = np.abs(got - expected)[mask.astype(bool)].max()
        assert np.all(got[~mask.astype(bool)] == 0)
    else:
        diff = np.abs(got - expected).max()
    print(f"{arch} {head}: max |diff| {diff:.2e}")
    assert diff <= TOLERANCE


def test_bare_encoder_has_no_head(tmp_path):
    import transformers

    transformers.AutoModel.from_config(tiny_config("bert")).save_pretrained(tmp_path)
    engine = nlpengine.load(tmp_path)
    assert engine.head is None and engine.id2label == {}
    assert engine.encode(np.array([[5, 6, 7]])).logits is None


def test_id2label_disagreeing_with_the_classifier_is_a_model_error(tmp_path):
    import json

    import transformers

    config = tiny_config("bert", num_labels=3)
    transformers.AutoModelForTokenClassification.from_config(config).save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["id2label"] = {"0": "O", "1": "B-X"}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(nlpengine.ModelError, match="id2label.*classifier.weight"):
        nlpengine.load(tmp_path)
