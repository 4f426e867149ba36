"""nlpengine.torch.lora on transformers models: PEFT-compatible adapters."""

from __future__ import annotations

import copy
import json

import nlpengine
import numpy as np
import pytest
import torch
from conftest import assert_close, encode_kwargs, make_batch, save_tiny_model

peft = pytest.importorskip("peft")
lora = pytest.importorskip("nlpengine.torch.lora")

LENGTHS = [6, 9, 3]


def _logits(model, ids, mask, types):
    kwargs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if types is not None:
        kwargs["token_type_ids"] = torch.from_numpy(types)
    model.eval()
    with torch.no_grad():
        return model(**kwargs).logits.float().numpy()


def _trained(model, seed=0):
    """Give the trainable parameters non-trivial values, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def test_only_lora_and_modules_to_save_train(tmp_path):
    _, model = save_tiny_model(tmp_path, "bert", head="token-classification")
    lora.apply_lora(model, r=4, alpha=8, targets=("query", "value"))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    expected = sorted(
        [
            f"bert.encoder.layer.{i}.attention.self.{m}.lora_{ab}.weight"
            for i in range(2)
            for m in ("query", "value")
            for ab in "AB"
        ]
        + ["classifier.weight", "classifier.bias"]
    )
    assert trainable == expected
    # Base names are unchanged; B starts at zero so the model is the base model.
    q = model.bert.encoder.layer[0].attention.self.query
    assert isinstance(q, lora.LoraLinear) and isinstance(q, torch.nn.Linear)
    assert "bert.encoder.layer.0.attention.self.query.weight" in model.state_dict()
    assert torch.count_nonzero(q.lora_B.weight) == 0 and q.scaling == 2.0

    with pytest.raises(ValueError, match="no module"):
        lora.apply_lora(copy.deepcopy(model), targets=("nothing",))


def test_target_must_be_linear(tmp_path):
    _, model = save_tiny_model(tmp_path, "bert", head="token-classification")
    with pytest.raises(ValueError, match="nn.Linear"):
        lora.apply_lora(model, targets=("attention",))


def test_gradients_reach_lora_only(tmp_path):
    _, model = save_tiny_model(tmp_path, "roberta", head="token-classification")
    lora.apply_lora(model, r=2, alpha=4, dropout=0.1)
    model.train()
    ids, mask, _ = make_batch(model.config, LENGTHS)
    out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    out.logits.sum().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name


@pytest.mark.parametrize(
    "arch,task", [("bert", "TOKEN_CLS"), ("distilbert", "TOKEN_CLS"), ("roberta", "SEQ_CLS")]
)
def test_saved_adapter_loads_in_peft(tmp_path, arch, task):
    from transformers import AutoModelForSequenceClassification

    if task == "TOKEN_CLS":
        base_dir, base = save_tiny_model(tmp_path, arch, head="token-classification")
    else:
        from conftest import tiny_config

        cfg = tiny_config(arch)
        cfg.num_labels = 3
        torch.manual_seed(0)
        base = AutoModelForSequenceClassification.from_config(cfg).eval()
        base_dir = tmp_path / "base"
        base.save_pretrained(base_dir)
    targets = ("q_lin", "v_lin") if arch == "distilbert" else ("query", "value")
    ours = _trained(lora.apply_lora(copy.deepcopy(base), r=4, alpha=8, targets=targets))
    adapter_dir = lora.save_adapter(ours, tmp_path / "adapter", base_dir)

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == task
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert config["base_model_name_or_path"] == str(base_dir)
    assert config["nlpengine_base"] == "../" + base_dir.name

    # PEFT loads it onto the transformers base and computes what our model does.
    ids, mask, types = make_batch(base.config, LENGTHS, seed=2)
    expected = _logits(ours, ids, mask, types)
    peft_model = peft.PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir)
    assert_close(_logits(peft_model, ids, mask, types), expected, 1e-5, "peft vs ours")

    # Key names equal what PEFT itself saves for the same configuration.
    from safetensors import safe_open

    peft_dir = tmp_path / "peft-saved"
    reference = peft.get_peft_model(
        copy.deepcopy(base),
        peft.LoraConfig(
            r=4, lora_alpha=8, target_modules=list(targets), modules_to_save=["classifier"],
            task_type=task,
        ),
    )  # fmt: skip
    reference.save_pretrained(peft_dir)
    with safe_open(str(peft_dir / "adapter_model.safetensors"), "pt") as f:
        peft_keys = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        our_keys = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    assert our_keys == peft_keys
    assert set(lora.lora_state_dict(ours)) == set(peft_keys)

    # The runtime merges it at load, from the adapter directory alone too.
    merged = lora.merge_lora(copy.deepcopy(ours))
    assert not any(isinstance(m, lora.LoraLinear) for m in merged.modules())
    assert_close(_logits(merged, ids, mask, types), expected, 1e-5, "merged vs ours")
    runtime = nlpengine.load(adapter_dir)
    got = runtime.encode(ids, **encode_kwargs(ids, mask, types)).logits
    if got.ndim == 3:
        got, expected = got * mask[..., None], expected * mask[..., None]
    assert_close(got, expected, 1e-4, "runtime vs ours")


def test_merge_lora_state_dict_is_plain(tmp_path):
    _, base = save_tiny_model(tmp_path, "bert", head="token-classification")
    model = _trained(lora.apply_lora(copy.deepcopy(base), r=2, alpha=2))
    merged = lora.merge_lora(model)
    assert set(merged.state_dict()) == set(base.state_dict())
    q = "bert.encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q])


def test_save_adapter_writes_head_config_and_tokenizer(tmp_path):
    base_dir, base = save_tiny_model(tmp_path, "bert", head="token-classification")
    (base_dir / "tokenizer.json").write_text("{}")
    base.config.id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    base.config.label2id = {v: k for k, v in base.config.id2label.items()}
    model = _trained(lora.apply_lora(copy.deepcopy(base)))
    out = lora.save_adapter(model, tmp_path / "ad", base_dir)
    head = json.loads((out / "config.json").read_text())
    assert head["architectures"] == ["BertForTokenClassification"]
    assert head["id2label"] == {"0": "O", "1": "B-PER", "2": "I-PER"}
    assert (out / "tokenizer.json").is_file()
    runtime = nlpengine.load(out)
    assert runtime.id2label == {0: "O", 1: "B-PER", 2: "I-PER"}
    assert runtime.tokenizer_directory == str(out)
    ids, mask, types = make_batch(base.config, LENGTHS)
    got = runtime.encode(ids, **encode_kwargs(ids, mask, types)).logits * mask[..., None]
    want = _logits(model, ids, mask, types) * mask[..., None]
    assert np.abs(got - want).max() < 1e-4
