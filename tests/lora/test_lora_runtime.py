"""LoRA adapters merged by the C++ runtime at load: parity with PEFT's merged model,
several adapters over one base, adapter-only directories, and bad adapters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nlpengine
import numpy as np
import pytest
import torch
from conftest import assert_close, encode_kwargs, make_batch, save_tiny_model, tiny_config

peft = pytest.importorskip("peft")

LENGTHS = [7, 4, 9]
TOL = 1e-4


def _save_seq_cls_base(tmp_path, arch: str, seed: int = 0):
    """A tiny ...ForSequenceClassification model (conftest builds token heads only)."""
    from transformers import AutoModelForSequenceClassification

    cfg = tiny_config(arch)
    cfg.num_labels = 4
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    model.eval()
    model_dir = Path(tmp_path) / f"{arch}-seqcls-{seed}"
    model.save_pretrained(model_dir)
    return model_dir, model


def _base(tmp_path, arch: str, task: str):
    if task == "TOKEN_CLS":
        return save_tiny_model(tmp_path, arch, head="token-classification")
    return _save_seq_cls_base(tmp_path, arch)


def _make_adapter(base_model, out_dir, task: str, seed: int, targets=("query", "value")):
    """Wrap a copy of base_model with PEFT LoRA, randomise lora_B and the classifier,
    save the adapter; returns the PEFT model."""
    import copy

    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=list(targets),
        modules_to_save=["classifier"],
        task_type=task,
    )
    model = peft.get_peft_model(copy.deepcopy(base_model), cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    model.eval()
    model.save_pretrained(out_dir)
    return model


def _logits(model, ids, mask, types):
    kwargs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if types is not None:
        kwargs["token_type_ids"] = torch.from_numpy(types)
    with torch.no_grad():
        return model(**kwargs).logits.float().numpy()


def _masked(logits, mask):
    return logits * mask[..., None] if logits.ndim == 3 else logits


@pytest.mark.parametrize(
    "arch,task",
    [
        ("bert", "TOKEN_CLS"),
        ("roberta", "TOKEN_CLS"),
        ("distilbert", "TOKEN_CLS"),
        ("bert", "SEQ_CLS"),
        ("roberta", "SEQ_CLS"),
        ("electra", "SEQ_CLS"),
    ],
)
def test_adapter_matches_peft_merged_model(tmp_path, arch, task):
    base_dir, base_model = _base(tmp_path, arch, task)
    targets = ("q_lin", "v_lin") if arch == "distilbert" else ("query", "value")
    adapter_dir = tmp_path / "adapter"
    peft_model = _make_adapter(base_model, adapter_dir, task, seed=1, targets=targets)
    ids, mask, types = make_batch(base_model.config, LENGTHS, seed=3)

    expected = _logits(peft_model.merge_and_unload(), ids, mask, types)
    base_logits = _logits(base_model, ids, mask, types)
    assert np.abs(expected - base_logits).max() > 1e-2, "the adapter should change the logits"

    model = nlpengine.load(base_dir, adapter=adapter_dir)
    assert model.adapter_directory == str(adapter_dir)
    out = model.encode(ids, **encode_kwargs(ids, mask, types))
    assert_close(_masked(out.logits, mask), _masked(expected, mask), TOL, f"{arch} {task}")


def test_two_adapters_over_one_base(tmp_path):
    base_dir, base_model = _base(tmp_path, "bert", "TOKEN_CLS")
    ids, mask, types = make_batch(base_model.config, LENGTHS, seed=4)
    expected = {}
    for seed in (1, 2):
        peft_model = _make_adapter(base_model, tmp_path / f"adapter{seed}", "TOKEN_CLS", seed)
        expected[seed] = _logits(peft_model.merge_and_unload(), ids, mask, types)

    plain = nlpengine.load(base_dir)
    one = nlpengine.load(base_dir, adapter=tmp_path / "adapter1")
    two = nlpengine.load(base_dir, adapter=tmp_path / "adapter2")
    kw = encode_kwargs(ids, mask, types)
    for seed, model in ((1, one), (2, two)):
        got = model.encode(ids, **kw).logits
        assert_close(_masked(got, mask), _masked(expected[seed], mask), TOL, f"adapter {seed}")
    base_expected = _logits(base_model, ids, mask, types)
    assert_close(
        _masked(plain.encode(ids, **kw).logits, mask), _masked(base_expected, mask), TOL, "base"
    )
    # Loading adapters left the base untouched, even when loaded again afterwards.
    again = nlpengine.load(base_dir).encode(ids, **kw).logits
    assert_close(_masked(again, mask), _masked(base_expected, mask), TOL, "base again")


def test_adapter_directory_alone_resolves_its_base(tmp_path):
    base_dir, base_model = _base(tmp_path, "bert", "TOKEN_CLS")
    adapter_dir = tmp_path / "adapters" / "ner"
    peft_model = _make_adapter(base_model, adapter_dir, "TOKEN_CLS", seed=5)
    ids, mask, types = make_batch(base_model.config, LENGTHS, seed=6)
    expected = _logits(peft_model.merge_and_unload(), ids, mask, types)

    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # Relative to the adapter directory, as nlpengine.torch.lora.save_adapter writes it.
    config["base_model_name_or_path"] = "../../" + base_dir.name
    config_path.write_text(json.dumps(config))
    # A head config in the adapter directory renames the labels.
    labels = {"0": "O", "1": "B-X", "2": "I-X"}
    (adapter_dir / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertForTokenClassification"],
                    "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}})
    )  # fmt: skip
    model = nlpengine.load(adapter_dir)
    assert Path(model.directory).resolve() == base_dir.resolve()
    assert model.id2label == {0: "O", 1: "B-X", 2: "I-X"}
    assert model.head == "token_classification"
    assert model.tokenizer_directory == model.directory  # no tokenizer.json in the adapter
    out = model.encode(ids, **encode_kwargs(ids, mask, types))
    assert_close(_masked(out.logits, mask), _masked(expected, mask), TOL, "adapter dir")

    # nlpengine_base wins over base_model_name_or_path.
    config["nlpengine_base"] = str(base_dir.resolve())
    config["base_model_name_or_path"] = "does/not/exist"
    config_path.write_text(json.dumps(config))
    assert Path(nlpengine.load(adapter_dir).directory) == base_dir.resolve()

    config.pop("nlpengine_base")
    config_path.write_text(json.dumps(config))
    with pytest.raises(nlpengine.ModelError, match="base_model_name_or_path"):
        nlpengine.load(adapter_dir)


def test_adapter_head_from_bare_base(tmp_path):
    """A bare encoder base plus an adapter carrying the classifier and a head config."""
    token_dir, token_model = _base(tmp_path, "bert", "TOKEN_CLS")
    adapter_dir = tmp_path / "adapter"
    peft_model = _make_adapter(token_model, adapter_dir, "TOKEN_CLS", seed=7)
    ids, mask, types = make_batch(token_model.config, LENGTHS, seed=8)
    expected = _logits(peft_model.merge_and_unload(), ids, mask, types)

    bare_dir = tmp_path / "bare"
    token_model.bert.save_pretrained(bare_dir)  # keys without the "bert." prefix, no classifier
    model = nlpengine.load(bare_dir, adapter=adapter_dir)  # head from task_type TOKEN_CLS
    assert model.head == "token_classification"
    out = model.encode(ids, **encode_kwargs(ids, mask, types))
    assert_close(_masked(out.logits, mask), _masked(expected, mask), TOL, "bare base")


# ---------------------------------------------------------------------------
# Bad adapters
# ---------------------------------------------------------------------------


@pytest.fixture
def good_adapter(tmp_path):
    base_dir, base_model = _base(tmp_path, "bert", "TOKEN_CLS")
    adapter_dir = tmp_path / "adapter"
    _make_adapter(base_model, adapter_dir, "TOKEN_CLS", seed=1)
    return base_dir, adapter_dir


def _rewrite_tensors(path: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _expect_error(base_dir, adapter_dir, *fragments):
    with pytest.raises(nlpengine.ModelError) as info:
        nlpengine.load(base_dir, adapter=adapter_dir)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


QUERY0 = "base_model.model.bert.encoder.layer.0.attention.self.query"


def test_missing_adapter_files(good_adapter, tmp_path):
    base_dir, adapter_dir = good_adapter
    _expect_error(base_dir, tmp_path / "nowhere", "nowhere", "adapter directory")
    (adapter_dir / "adapter_model.safetensors").unlink()
    _expect_error(base_dir, adapter_dir, "adapter_model.safetensors")
    (adapter_dir / "adapter_config.json").unlink()
    _expect_error(base_dir, adapter_dir, "adapter_config.json")


def test_bad_adapter_json(good_adapter):
    base_dir, adapter_dir = good_adapter
    path = adapter_dir / "adapter_config.json"
    good = json.loads(path.read_text())
    path.write_text("{not json")
    _expect_error(base_dir, adapter_dir, str(path), "not valid JSON")

    for key, value, fragment in [
        ("peft_type", "IA3", "peft_type"),
        ("use_dora", True, "use_dora"),
        ("bias", "all", "bias"),
        ("r", 8, "r=8"),
    ]:
        path.write_text(json.dumps(dict(good, **{key: value})))
        _expect_error(base_dir, adapter_dir, str(path), fragment)


def test_rslora_scaling(tmp_path):
    base_dir, base_model = _base(tmp_path, "bert", "TOKEN_CLS")
    import copy

    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
        task_type="TOKEN_CLS",
    )
    model = peft.get_peft_model(copy.deepcopy(base_model), cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    model.eval()
    model.save_pretrained(tmp_path / "adapter")
    ids, mask, types = make_batch(base_model.config, LENGTHS, seed=2)
    expected = _logits(model.merge_and_unload(), ids, mask, types)
    got = nlpengine.load(base_dir, adapter=tmp_path / "adapter").encode(
        ids, **encode_kwargs(ids, mask, types)
    )
    assert_close(_masked(got.logits, mask), _masked(expected, mask), TOL, "rslora")


def test_wrong_shape(good_adapter):
    base_dir, adapter_dir = good_adapter
    path = adapter_dir / "adapter_model.safetensors"

    def edit(t):
        t[QUERY0 + ".lora_B.weight"] = torch.zeros(39, 4)

    _rewrite_tensors(path, edit)
    _expect_error(base_dir, adapter_dir, str(path), QUERY0 + ".lora_B.weight", "[39, 4]")


def test_missing_lora_b(good_adapter):
    base_dir, adapter_dir = good_adapter
    path = adapter_dir / "adapter_model.safetensors"
    _rewrite_tensors(path, lambda t: t.pop(QUERY0 + ".lora_B.weight"))
    _expect_error(base_dir, adapter_dir, str(path), "missing tensor", QUERY0 + ".lora_B.weight")


def test_unknown_target_module(good_adapter):
    base_dir, adapter_dir = good_adapter
    path = adapter_dir / "adapter_model.safetensors"
    bogus = "base_model.model.bert.encoder.layer.7.attention.self.query"

    def edit(t):
        t[bogus + ".lora_A.weight"] = torch.zeros(4, 40)
        t[bogus + ".lora_B.weight"] = torch.zeros(40, 4)

    _rewrite_tensors(path, edit)
    _expect_error(base_dir, adapter_dir, str(path), bogus + ".lora_A.weight", "unknown target")

    # A module the config's target_modules do not name.
    shutil.rmtree(adapter_dir)
    _, base_model = save_tiny_model(base_dir.parent / "again", "bert", head="token-classification")
    _make_adapter(base_model, adapter_dir, "TOKEN_CLS", seed=1)
    key = "base_model.model.bert.encoder.layer.0.attention.self.key"

    def add_key(t):
        t[key + ".lora_A.weight"] = torch.zeros(4, 40)
        t[key + ".lora_B.weight"] = torch.zeros(40, 4)

    _rewrite_tensors(path, add_key)
    _expect_error(base_dir, adapter_dir, str(path), key + ".lora_A.weight", "target_modules")


def test_head_config_must_match_base(good_adapter):
    base_dir, adapter_dir = good_adapter
    (adapter_dir / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    _expect_error(base_dir, adapter_dir, str(adapter_dir / "config.json"), "model_type")
    (adapter_dir / "config.json").write_text(
        json.dumps({"architectures": ["BertForTokenClassification"], "id2label": {"0": "O"}})
    )
    _expect_error(base_dir, adapter_dir, "id2label", "classifier.weight")
