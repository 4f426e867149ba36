"""Numerical parity of nlpengine with transformers on tiny random-weight encoders.

Every architecture is built with unusual sizes (hidden 40, 5 heads,
intermediate 72, vocab 120, 2-3 layers) and non-trivial seeded weights, saved
in HF layout, loaded with ``nlpengine.load`` and compared with the
transformers model (eval mode, no grad) over unmasked positions.
"""

from __future__ import annotations

import json
import struct

import nlpengine
import numpy as np
import pytest
from conftest import (
    ARCHS_WITH_POOLER,
    assert_close,
    assert_close_unmasked,
    build_tiny_model,
    encode_kwargs,
    make_batch,
    max_abs_diff_unmasked,
    read_safetensors_raw,
    rebuild_safetensors,
    reference_outputs,
    save_tiny_model,
    tensors_from_safetensors,
)

#: Max abs difference allowed between nlpengine and transformers (float32).
TOLERANCE = 1e-4

#: Lengths of the padded batch: every sequence in the batch has a different length.
LENGTHS = (3, 7, 12, 17)

# (case id, architecture, config overrides)
CASES = [
    ("bert", "bert", {}),
    ("bert-gelu_new", "bert", {"hidden_act": "gelu_new"}),
    ("bert-eps1e-3-3layers", "bert", {"layer_norm_eps": 1e-3, "num_hidden_layers": 3}),
    ("roberta", "roberta", {}),
    ("roberta-gelu_new-eps1e-5", "roberta", {"hidden_act": "gelu_new", "layer_norm_eps": 1e-5}),
    ("xlm-roberta", "xlm-roberta", {}),
    (
        "xlm-roberta-gelu_new-eps1e-3",
        "xlm-roberta",
        {"hidden_act": "gelu_new", "layer_norm_eps": 1e-3},
    ),
    ("distilbert", "distilbert", {"activation": "gelu", "sinusoidal_pos_embds": False}),
    ("distilbert-3layers", "distilbert", {"n_layers": 3}),
    ("electra-emb24", "electra", {"embedding_size": 24}),
    ("electra-emb40-equal", "electra", {"embedding_size": 40}),
    (
        "electra-emb24-gelu_new-eps1e-3",
        "electra",
        {"embedding_size": 24, "hidden_act": "gelu_new", "layer_norm_eps": 1e-3},
    ),
]

case_params = pytest.mark.parametrize(
    "arch, overrides", [pytest.param(arch, ov, id=cid) for cid, arch, ov in CASES]
)

ALL_ARCHS = ["bert", "roberta", "xlm-roberta", "distilbert", "electra"]


def check_encode(model_dir, torch_model, arch, input_ids, attention_mask, token_type_ids, label):
    """Run nlpengine and transformers on the same inputs and compare them."""
    engine = nlpengine.load(model_dir)
    out = engine.encode(input_ids, **encode_kwargs(input_ids, attention_mask, token_type_ids))
    expected_hidden, expected_pooled = reference_outputs(
        torch_model, input_ids, attention_mask, token_type_ids
    )

    hidden = out.last_hidden_state
    assert isinstance(hidden, np.ndarray) and hidden.dtype == np.float32
    assert hidden.shape == expected_hidden.shape
    assert_close_unmasked(
        hidden, expected_hidden, attention_mask, TOLERANCE, f"{label} last_hidden_state"
    )

    if arch in ARCHS_WITH_POOLER:
        assert out.pooler_output is not None, f"{arch} checkpoint has pooler weights"
        assert out.pooler_output.dtype == np.float32
        assert_close(out.pooler_output, expected_pooled, TOLERANCE, f"{label} pooler_output")
    else:
        assert out.pooler_output is None, (
            f"{arch} has no pooler weights: pooler_output must be None"
        )


@case_params
def test_padded_batch_matches_transformers(tmp_path, arch, overrides):
    model_dir, torch_model = save_tiny_model(tmp_path, arch, **overrides)
    ids, mask, types = make_batch(torch_model.config, LENGTHS, seed=1)
    if types is not None and torch_model.config.type_vocab_size >= 2:
        assert set(np.unique(types[mask == 1])) == {0, 1}
    pad_id = torch_model.config.pad_token_id
    assert not np.any(ids[mask == 1] == pad_id), "real tokens must never equal pad_token_id"
    assert np.all(ids[mask == 0] == pad_id)
    check_encode(model_dir, torch_model, arch, ids, mask, types, f"{arch}{overrides}")


@case_params
def test_no_attention_mask_matches_transformers(tmp_path, arch, overrides):
    """attention_mask=None means all ones; token_type_ids=None means all zeros."""
    model_dir, torch_model = save_tiny_model(tmp_path, arch, **overrides)
    ids, _, _ = make_batch(torch_model.config, (9, 9, 9), seed=2)
    check_encode(model_dir, torch_model, arch, ids, None, None, f"{arch}{overrides} no mask")


@case_params
def test_batch_size_one_matches_transformers(tmp_path, arch, overrides):
    model_dir, torch_model = save_tiny_model(tmp_path, arch, **overrides)
    ids, mask, types = make_batch(torch_model.config, (11,), seed=3)
    check_encode(model_dir, torch_model, arch, ids, mask, types, f"{arch}{overrides} batch 1")


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_all_ones_mask_equals_no_mask(tmp_path, arch):
    model_dir, torch_model = save_tiny_model(tmp_path, arch)
    engine = nlpengine.load(model_dir)
    ids, _, _ = make_batch(torch_model.config, (6, 6), seed=4)
    without = engine.encode(ids).last_hidden_state
    with_ones = engine.encode(ids, attention_mask=np.ones_like(ids)).last_hidden_state
    assert_close(with_ones, without, 1e-6, f"{arch} all-ones mask vs None")


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_padding_does_not_leak_into_real_tokens(tmp_path, arch):
    """Extra padding, with arbitrary valid ids under the mask, must not change
    the outputs at unmasked positions."""
    model_dir, torch_model = save_tiny_model(tmp_path, arch)
    engine = nlpengine.load(model_dir)
    ids, mask, types = make_batch(torch_model.config, (5, 8), seed=5)
    short = engine.encode(ids, **encode_kwargs(ids, mask, types)).last_hidden_state

    ids2, mask2, types2 = make_batch(torch_model.config, (5, 8), seed=5, pad_to=20)
    assert np.array_equal(ids2[:, :8], ids) and np.array_equal(mask2[:, :8], mask)
    rng = np.random.default_rng(0)
    ids2[mask2 == 0] = rng.integers(3, torch_model.config.vocab_size, size=int((mask2 == 0).sum()))
    long = engine.encode(ids2, **encode_kwargs(ids2, mask2, types2)).last_hidden_state
    assert long.shape == (2, 20, short.shape[-1])
    diff = max_abs_diff_unmasked(long[:, :8], short, mask)
    print(f"{arch}: padded to 20 vs 8: max abs diff {diff:.3e}")
    assert diff <= TOLERANCE


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_token_classification_checkpoint_loads_base_encoder(tmp_path, arch):
    """A checkpoint saved from AutoModelForTokenClassification has prefixed keys
    ("bert.", "roberta.", "distilbert.", "electra.") and a classifier head;
    nlpengine must run its base encoder."""
    model_dir, torch_model = save_tiny_model(tmp_path, arch, head="token-classification")
    header, _ = read_safetensors_raw(model_dir / "model.safetensors")
    prefix = torch_model.base_model_prefix + "."
    assert any(k.startswith(prefix) for k in header), f"expected {prefix!r} keys in checkpoint"
    assert any(k.startswith("classifier.") for k in header)

    ids, mask, types = make_batch(torch_model.config, LENGTHS, seed=6)
    engine = nlpengine.load(model_dir)
    out = engine.encode(ids, **encode_kwargs(ids, mask, types))
    expected, _ = reference_outputs(torch_model.base_model, ids, mask, types)
    assert_close_unmasked(
        out.last_hidden_state,
        expected,
        mask,
        TOLERANCE,
        f"{arch} token-classification base encoder",
    )
    # Token-classification heads are built without a pooler.
    assert not any(".pooler." in k for k in header)
    assert out.pooler_output is None


def test_bert_without_pooler_weights_gives_none(tmp_path):
    model_dir, torch_model = save_tiny_model(tmp_path, "bert")
    path = model_dir / "model.safetensors"
    tensors, metadata = tensors_from_safetensors(path)
    removed = [k for k in tensors if k.startswith("pooler.")]
    assert sorted(removed) == ["pooler.dense.bias", "pooler.dense.weight"]
    rebuild_safetensors(path, {k: v for k, v in tensors.items() if k not in removed}, metadata)

    ids, mask, types = make_batch(torch_model.config, LENGTHS, seed=7)
    out = nlpengine.load(model_dir).encode(ids, attention_mask=mask, token_type_ids=types)
    assert out.pooler_output is None
    expected, _ = reference_outputs(torch_model, ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, expected, mask, TOLERANCE, "bert without pooler")


@pytest.mark.parametrize("arch", ["bert", "roberta", "electra"])
def test_variants_are_distinguishable(arch):
    """Guard for the parity cases above: with these weights, erf-GELU vs tanh-GELU
    and layer_norm_eps 1e-12 vs 1e-3 change the reference output by far more than
    TOLERANCE, so an engine that ignored hidden_act or layer_norm_eps would fail."""
    base = build_tiny_model(arch)
    ids, mask, types = make_batch(base.config, LENGTHS, seed=1)
    ref, _ = reference_outputs(base, ids, mask, types)
    for overrides in ({"hidden_act": "gelu_new"}, {"layer_norm_eps": 1e-3}):
        variant = build_tiny_model(arch, **overrides)
        out, _ = reference_outputs(variant, ids, mask, types)
        diff = max_abs_diff_unmasked(out, ref, mask)
        print(f"{arch} {overrides}: reference moves by {diff:.3e}")
        assert diff > 5 * TOLERANCE


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_irregular_masks_match_transformers(tmp_path, arch):
    """Left padding, a hole inside a sequence and an all-masked row: the
    unmasked positions still match transformers, and a fully masked row does
    not disturb the others."""
    model_dir, torch_model = save_tiny_model(tmp_path, arch)
    config = torch_model.config
    ids, mask, types = make_batch(config, (12, 9, 5, 12), seed=8)
    # Row 1: left padding (real tokens moved to the end, pad ids in front).
    n = int(mask[1].sum())
    ids[1] = np.concatenate([np.full(12 - n, config.pad_token_id), ids[1, :n]])
    mask[1] = np.concatenate([np.zeros(12 - n, np.int64), np.ones(n, np.int64)])
    if types is not None:
        types[1] = np.concatenate([np.zeros(12 - n, np.int64), types[1, :n]])
    # Row 2: all masked (its values are unspecified; the other rows must be right).
    mask[2] = 0
    # Row 3: a hole of masked real tokens in the middle.
    mask[3, 4:7] = 0
    engine = nlpengine.load(model_dir)
    out = engine.encode(ids, **encode_kwargs(ids, mask, types))
    expected, _ = reference_outputs(torch_model, ids, mask, types)
    assert_close_unmasked(
        out.last_hidden_state, expected, mask, TOLERANCE, f"{arch} irregular masks"
    )
    assert np.all(np.isfinite(out.last_hidden_state[mask == 1]))


@pytest.mark.parametrize("arch", ["bert", "electra"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoint(tmp_path, arch, dtype):
    """A checkpoint saved in F16/BF16 computes like the float32 model with the
    same (rounded) weights."""
    import torch

    model = build_tiny_model(arch)
    model.to(getattr(torch, dtype))
    model_dir = tmp_path / f"{arch}-{dtype}"
    model.save_pretrained(model_dir)
    header, _ = read_safetensors_raw(model_dir / "model.safetensors")
    expected_dtype = {"float16": "F16", "bfloat16": "BF16"}[dtype]
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {expected_dtype}
    model.float()  # same rounded weights, float32 compute

    ids, mask, types = make_batch(model.config, LENGTHS, seed=9)
    out = nlpengine.load(model_dir).encode(ids, **encode_kwargs(ids, mask, types))
    expected, expected_pooled = reference_outputs(model, ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, expected, mask, TOLERANCE, f"{arch} {dtype}")
    if arch in ARCHS_WITH_POOLER:
        assert_close(out.pooler_output, expected_pooled, TOLERANCE, f"{arch} {dtype} pooler")
    assert out.last_hidden_state.dtype == np.float32


def test_sharded_checkpoint(tmp_path):
    """save_pretrained with a small max_shard_size writes model.safetensors.index.json
    and several shards."""
    model = build_tiny_model("bert", num_hidden_layers=3)
    model_dir = tmp_path / "sharded"
    model.save_pretrained(model_dir, max_shard_size="40KB")
    assert not (model_dir / "model.safetensors").exists()
    assert (model_dir / "model.safetensors.index.json").is_file()
    assert len(list(model_dir.glob("model-*.safetensors"))) >= 2

    ids, mask, types = make_batch(model.config, LENGTHS, seed=10)
    out = nlpengine.load(model_dir).encode(ids, **encode_kwargs(ids, mask, types))
    expected, expected_pooled = reference_outputs(model, ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, expected, mask, TOLERANCE, "sharded bert")
    assert_close(out.pooler_output, expected_pooled, TOLERANCE, "sharded bert pooler")


@pytest.mark.parametrize("misalignment", [1, 2, 3])
def test_unaligned_tensor_data(tmp_path, misalignment):
    """safetensors does not promise aligned data: a header whose length puts
    every float32 tensor at an odd address must still load correctly."""
    model_dir, torch_model = save_tiny_model(tmp_path, "bert")
    path = model_dir / "model.safetensors"
    header, data = read_safetensors_raw(path)
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * ((misalignment - 8 - len(hbytes)) % 8)  # trailing spaces are valid JSON
    assert (8 + len(hbytes)) % 4 == misalignment % 4
    path.write_bytes(struct.pack("<Q", len(hbytes)) + hbytes + data)

    ids, mask, types = make_batch(torch_model.config, LENGTHS, seed=11)
    out = nlpengine.load(model_dir).encode(ids, **encode_kwargs(ids, mask, types))
    expected, expected_pooled = reference_outputs(torch_model, ids, mask, types)
    assert_close_unmasked(
        out.last_hidden_state, expected, mask, TOLERANCE, f"misaligned by {misalignment}"
    )
    assert_close(
        out.pooler_output, expected_pooled, TOLERANCE, f"misaligned by {misalignment} pooler"
    )


@pytest.mark.parametrize(
    "hidden, heads",
    [(96, 3), (128, 2), (128, 1)],
    ids=["heads-of-32", "heads-of-64", "heads-of-128"],
)
def test_long_sequences_with_wide_heads_match_transformers(tmp_path, hidden, heads):
    """Real checkpoints' head widths (32, 64, 128) on sequences long enough for the
    attention kernels' blocked paths (past 64 and 160 keys; the cases above stay under 20
    tokens in heads of 8), padded in one batch with short ones. Measured max |diff| on the
    Sapphire Rapids host: 6.6e-6, 1.2e-5 and 3.3e-5 (MKL, oneDNN and the AVX2 build
    alike) against TOLERANCE."""
    model_dir, torch_model = save_tiny_model(
        tmp_path,
        "bert",
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=320,
    )
    ids, mask, types = make_batch(torch_model.config, (300, 161, 7, 130, 1), seed=12)
    check_encode(
        model_dir, torch_model, "bert", ids, mask, types, f"hidden {hidden}, {heads} heads"
    )
