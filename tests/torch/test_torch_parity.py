"""nlpengine.torch against transformers and the C++ runtime.

Every architecture x head: the same checkpoint loaded by ``load_pretrained`` gives
the outputs of transformers and of ``nlpengine.load``; ``save_pretrained`` output
loads back in both with no missing or unexpected keys. On the real
all-MiniLM-L6-v2: a new head is initialised, gradients flow, dropout follows
train()/eval().
"""

from __future__ import annotations

import json
import subprocess
import sys

import helpers_torch  # noqa: F401  (imports nlpengine.torch from the source tree)
import nlpengine
import numpy as np
import pytest
import torch
from conftest import (
    ARCH_CONFIGS,
    assert_close,
    assert_close_unmasked,
    make_batch,
    reference_outputs,
    tiny_config,
)
from helpers_torch import (
    HEADS,
    compare,
    hf_auto_class,
    hf_forward,
    ours_forward,
    runtime_forward,
    save_tiny_head_model,
)
from nlpengine.torch import EncoderConfig, EncoderModel, load_pretrained
from safetensors import safe_open

#: Max abs difference (float32) over unmasked positions vs transformers / the runtime.
TOLERANCE = 1e-4

#: (case id, model_type, config overrides)
ARCH_CASES = [
    ("bert", "bert", {}),
    ("roberta", "roberta", {}),
    ("xlm-roberta", "xlm-roberta", {}),
    ("camembert", "camembert", {}),
    ("distilbert", "distilbert", {}),
    ("electra-e24", "electra", {"embedding_size": 24}),
    ("electra-e40", "electra", {"embedding_size": 40}),
]
HEAD_IDS = {
    None: "none",
    "sequence_classification": "seq",
    "token_classification": "tok",
    "question_answering": "qa",
}

EXPECTED_ARCHITECTURE = {
    ("bert", None): "BertModel",
    ("roberta", "token_classification"): "RobertaForTokenClassification",
    ("xlm-roberta", "sequence_classification"): "XLMRobertaForSequenceClassification",
    ("distilbert", "sequence_classification"): "DistilBertForSequenceClassification",
    ("electra", "token_classification"): "ElectraForTokenClassification",
    ("distilbert", "question_answering"): "DistilBertForQuestionAnswering",
}


def _batch(config, seed=0):
    # Right-padded, with a fully used row, a short row and padding at the end.
    return make_batch(config, [7, 4, 2], seed=seed, pad_to=9)


@pytest.mark.parametrize("head", HEADS, ids=lambda h: HEAD_IDS[h])
@pytest.mark.parametrize("case", ARCH_CASES, ids=lambda c: c[0])
def test_parity_and_round_trip(tmp_path, case, head):
    name, arch, overrides = case
    model_dir, hf_model = save_tiny_head_model(tmp_path, arch, head, seed=3, **overrides)
    ids, mask, types = _batch(hf_model.config)

    model = load_pretrained(model_dir)  # head from config.json's "architectures"
    assert isinstance(model, EncoderModel)
    assert model.head == head
    assert model.loading_info["initialized_keys"] == []
    assert not model.training

    # Same weight names as transformers.
    assert set(model.state_dict()) == set(hf_model.state_dict()) - {
        k for k in hf_model.state_dict() if k.endswith(("position_ids", "token_type_ids"))
    }

    ours = ours_forward(model, ids, mask, types)
    expected = hf_forward(hf_model, head, ids, mask, types)
    runtime = runtime_forward(model_dir, head, ids, mask, types)
    tag = f"{name}/{HEAD_IDS[head]}"
    compare(ours, expected, mask, head, TOLERANCE, f"{tag} vs transformers")
    compare(ours, runtime, mask, head, TOLERANCE, f"{tag} vs runtime")

    # model.encoder is the bare encoder of every head.
    with torch.no_grad():
        hidden = model.encoder(torch.from_numpy(ids), torch.from_numpy(mask), None)
        if types is not None:
            hidden = model.encoder(
                torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)
            )
    base = hf_model if head is None else getattr(hf_model, hf_model.base_model_prefix)
    ref_hidden, ref_pooled = reference_outputs(base, ids, mask, types)
    assert_close_unmasked(hidden.numpy(), ref_hidden, mask, TOLERANCE, f"{tag} encoder")
    if head is None and ref_pooled is not None:
        with torch.no_grad():
            pooled = model.encoder.pool(hidden).numpy()
        assert_close(pooled, ref_pooled, TOLERANCE, f"{tag} pooler")

    # Round trip: transformers and the runtime load the saved directory.
    out_dir = tmp_path / "saved"
    model.save_pretrained(out_dir)
    saved_config = json.loads((out_dir / "config.json").read_text())
    assert saved_config["model_type"] == arch
    expected_arch = EXPECTED_ARCHITECTURE.get((arch, head))
    if expected_arch is not None:
        assert saved_config["architectures"] == [expected_arch]
    if head is not None:
        labels = 2 if head == "question_answering" else 3
        assert saved_config["id2label"] == {str(i): f"LABEL_{i}" for i in range(labels)}
    with safe_open(str(out_dir / "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert set(f.keys()) == set(model.state_dict())

    reloaded, info = hf_auto_class(head).from_pretrained(out_dir, output_loading_info=True)
    assert type(reloaded) is type(hf_model)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info[key], f"{key}: {info[key]}"
    compare(
        hf_forward(reloaded, head, ids, mask, types), ours, mask, head, TOLERANCE, f"{tag} re-HF"
    )
    compare(
        runtime_forward(out_dir, head, ids, mask, types),
        ours,
        mask,
        head,
        TOLERANCE,
        f"{tag} re-runtime",
    )
    again = load_pretrained(out_dir)
    assert again.head == head and again.loading_info["unexpected_keys"] == []
    compare(ours_forward(again, ids, mask, types), ours, mask, head, 0.0, f"{tag} reload")


@pytest.mark.parametrize(
    "arch,overrides",
    [
        ("bert", {"hidden_act": "gelu_new", "layer_norm_eps": 1e-3}),
        ("bert", {"hidden_act": "gelu_pytorch_tanh"}),
        ("roberta", {"hidden_act": "relu", "layer_norm_eps": 1e-5}),
        ("electra", {"hidden_act": "silu"}),
        ("distilbert", {"activation": "relu"}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_config_variants(tmp_path, arch, overrides):
    head = "token_classification"
    model_dir, hf_model = save_tiny_head_model(tmp_path, arch, head, seed=5, **overrides)
    ids, mask, types = _batch(hf_model.config, seed=1)
    model = load_pretrained(model_dir)
    ours = ours_forward(model, ids, mask, types)
    label = f"{arch} {overrides}"
    compare(ours, hf_forward(hf_model, head, ids, mask, types), mask, head, TOLERANCE, label)
    runtime = runtime_forward(model_dir, head, ids, mask, types)
    compare(ours, runtime, mask, head, TOLERANCE, f"{label} vs runtime")


def test_dropout_probabilities_from_config():
    cfg = tiny_config(
        "bert", hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.2, classifier_dropout=0.4
    )
    config = EncoderConfig.from_dict(cfg.to_dict())
    model = EncoderModel(config, "sequence_classification")
    assert model.dropout.p == 0.4
    assert model.encoder.embeddings.dropout.p == 0.3
    layer = model.encoder.encoder.layer[0]
    assert layer.attention.self.dropout_p == 0.2
    assert layer.output.dropout.p == 0.3

    cfg = tiny_config("distilbert", dropout=0.15, attention_dropout=0.05, seq_classif_dropout=0.25)
    config = EncoderConfig.from_dict(cfg.to_dict())
    assert config.layer_norm_eps == 1e-12
    seq = EncoderModel(config, "sequence_classification")
    tok = EncoderModel(config, "token_classification")
    assert seq.dropout.p == 0.25 and tok.dropout.p == 0.15
    block = seq.encoder.transformer.layer[0]
    assert block.attention.dropout_p == 0.05 and block.ffn.dropout.p == 0.15

    roberta = EncoderConfig.from_dict(tiny_config("roberta", hidden_dropout_prob=0.35).to_dict())
    head = EncoderModel(roberta, "sequence_classification").classifier
    assert head.dropout.p == 0.35  # classifier_dropout None -> hidden_dropout_prob


def test_sharded_checkpoint(tmp_path):
    hf_model = save_tiny_head_model(tmp_path, "roberta", "token_classification")[1]
    sharded = tmp_path / "sharded"
    hf_model.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    model = load_pretrained(sharded)
    ids, mask, types = _batch(hf_model.config)
    head = "token_classification"
    compare(
        ours_forward(model, ids, mask, types),
        hf_forward(hf_model, head, ids, mask, types),
        mask,
        head,
        TOLERANCE,
        "sharded",
    )


def test_missing_encoder_weight_is_named(tmp_path):
    from conftest import rebuild_safetensors, tensors_from_safetensors

    model_dir, _ = save_tiny_head_model(tmp_path, "bert", "token_classification")
    path = model_dir / "model.safetensors"
    tensors, metadata = tensors_from_safetensors(path)
    del tensors["bert.encoder.layer.1.output.dense.weight"]
    rebuild_safetensors(path, tensors, metadata)
    with pytest.raises(nlpengine.ModelError, match=r"bert\.encoder\.layer\.1\.output\.dense"):
        load_pretrained(model_dir)


def test_new_head_needs_labels(minilm_dir):
    with pytest.raises(ValueError, match="num_labels"):
        load_pretrained(minilm_dir, head="token_classification")


def test_import_nlpengine_does_not_import_torch():
    code = "import sys, nlpengine; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


NEW_CLASSIFIER = ["classifier.bias", "classifier.weight"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_minilm_new_token_head_trains_and_round_trips(tmp_path, minilm_dir):
    id2label = dict(enumerate(LABELS))
    model = load_pretrained(
        minilm_dir, head="token_classification", num_labels=5, id2label=id2label
    )
    assert model.head == "token_classification" and model.num_labels == 5
    assert sorted(model.loading_info["initialized_keys"]) == NEW_CLASSIFIER
    # The base model's pooler and position_ids buffer are not part of a token model.
    assert "pooler.dense.weight" in model.loading_info["unexpected_keys"]
    assert "bert.encoder.layer.0.attention.self.query.weight" in model.state_dict()
    weight = model.classifier.weight.detach()
    assert torch.all(model.classifier.bias == 0)
    assert 0.01 < float(weight.std()) < 0.03  # normal(0, initializer_range = 0.02)

    config = model.config
    ids, mask, types = make_batch(config, [12, 7, 3], seed=4)
    t_ids, t_mask, t_types = (torch.from_numpy(a) for a in (ids, mask, types))

    # The encoder still equals the runtime's on the real checkpoint.
    with torch.no_grad():
        hidden = model.encoder(t_ids, t_mask, t_types).numpy()
    runtime = nlpengine.load(minilm_dir).encode(ids, attention_mask=mask, token_type_ids=types)
    assert_close_unmasked(hidden, runtime.last_hidden_state, mask, TOLERANCE, "minilm encoder")

    # Dropout: active in train(), off in eval().
    model.train()
    assert model.training and model.encoder.training
    assert all(m.training for m in model.modules())
    torch.manual_seed(0)
    a = model(t_ids, t_mask, t_types)
    b = model(t_ids, t_mask, t_types)
    assert not torch.allclose(a, b), "dropout inactive in train mode"
    model.eval()
    with torch.no_grad():
        c = model(t_ids, t_mask, t_types)
        d = model(t_ids, t_mask, t_types)
    assert torch.equal(c, d), "eval mode must be deterministic"

    # Gradients reach the new classifier and the pretrained encoder.
    model.train()
    model.zero_grad()
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 5, size=ids.shape))
    loss = model.loss(model(t_ids, t_mask, t_types), labels, t_mask)
    loss.backward()
    params = dict(model.named_parameters())
    for name in (
        "classifier.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.5.output.dense.weight",
        "bert.embeddings.word_embeddings.weight",
    ):
        grad = params[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, f"no gradient on {name}"

    # One SGD step, then save: transformers and the runtime load the result.
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(0.1 * p.grad)
    model.eval()
    logits = ours_forward(model, ids, mask, types)
    out_dir = tmp_path / "minilm-ner"
    model.save_pretrained(out_dir)
    saved = json.loads((out_dir / "config.json").read_text())
    assert saved["architectures"] == ["BertForTokenClassification"]
    assert saved["id2label"] == {str(i): name for i, name in id2label.items()}
    assert saved["label2id"] == {name: i for i, name in id2label.items()}

    head = "token_classification"
    hf, info = hf_auto_class(head).from_pretrained(out_dir, output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info[key], f"{key}: {info[key]}"
    assert hf.config.id2label == id2label
    compare(hf_forward(hf, head, ids, mask, types), logits, mask, head, TOLERANCE, "minilm re-HF")
    rt = nlpengine.load(out_dir)
    assert rt.head == head and rt.id2label == id2label
    compare(
        runtime_forward(out_dir, head, ids, mask, types),
        logits,
        mask,
        head,
        TOLERANCE,
        "minilm re-runtime",
    )


def test_minilm_new_sequence_head_keeps_pooler(tmp_path, minilm_dir):
    model = load_pretrained(
        minilm_dir, head="sequence_classification", num_labels=2, problem_type="regression"
    )
    assert model.config.problem_type == "regression"
    # BERT's sequence head uses the checkpoint's pooler; only the classifier is new.
    assert sorted(model.loading_info["initialized_keys"]) == NEW_CLASSIFIER
    out_dir = tmp_path / "minilm-cls"
    model.save_pretrained(out_dir)
    saved = json.loads((out_dir / "config.json").read_text())
    assert saved["problem_type"] == "regression"
    head = "sequence_classification"
    hf, info = hf_auto_class(head).from_pretrained(out_dir, output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info[key], f"{key}: {info[key]}"
    ids, mask, types = make_batch(model.config, [10, 4], seed=2)
    ours = ours_forward(model, ids, mask, types)
    compare(hf_forward(hf, head, ids, mask, types), ours, mask, head, TOLERANCE, "minilm cls HF")
    compare(
        runtime_forward(out_dir, head, ids, mask, types),
        ours,
        mask,
        head,
        TOLERANCE,
        "minilm cls runtime",
    )


def test_arch_configs_cover_supported_types():
    from nlpengine.torch.config import SUPPORTED_MODEL_TYPES

    assert set(ARCH_CONFIGS) <= set(SUPPORTED_MODEL_TYPES)


def test_defaults_without_mask_and_types(tmp_path):
    model_dir, hf_model = save_tiny_head_model(tmp_path, "bert", "sequence_classification")
    ids = make_batch(hf_model.config, [6, 6])[0]
    model = load_pretrained(model_dir)
    with torch.no_grad():
        ours = model(torch.from_numpy(ids)).numpy()
        ref = hf_model(input_ids=torch.from_numpy(ids)).logits.numpy()
    assert_close(ours, ref, TOLERANCE, "no mask / no token types")


def test_span_qa_loss_matches_transformers(tmp_path):
    model_dir, hf_model = save_tiny_head_model(tmp_path, "bert", "question_answering", seed=4)
    ids, mask, types = _batch(hf_model.config)
    model = load_pretrained(model_dir)
    positions = torch.tensor([[1, 3], [2, 2], [0, 40]])  # 40: past the end, ignored
    with torch.no_grad():
        logits = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        loss = model.loss(logits, positions)
    with torch.no_grad():
        expected = hf_model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
            start_positions=positions[:, 0],
            end_positions=positions[:, 1],
        ).loss
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
