"""Tiny random encoder-decoder checkpoints built with transformers (bart, t5 relu and
gated-gelu with tied or untied heads, marian), saved in Hugging Face layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

VOCAB = 97  # prime: catches a vocab/d_model mix-up

#: (case id, model_type, config kwargs). Unusual sizes: d_model 36 = 3 heads x 12 (BART,
#: Marian), T5 d_model 28 with d_kv 10 x 3 heads (inner 30 != d_model), FFN 52/44.
SEQ2SEQ_CASES = [
    (
        "bart",
        "bart",
        dict(
            d_model=36,
            encoder_layers=2,
            decoder_layers=3,
            encoder_attention_heads=3,
            decoder_attention_heads=4,
            encoder_ffn_dim=52,
            decoder_ffn_dim=44,
            max_position_embeddings=40,
            activation_function="gelu",
        ),
    ),
    (
        "bart-scaled",
        "bart",
        dict(
            d_model=36,
            encoder_layers=1,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=3,
            encoder_ffn_dim=40,
            decoder_ffn_dim=40,
            max_position_embeddings=40,
            scale_embedding=True,
            activation_function="relu",
        ),
    ),
    (
        "t5-relu-tied",
        "t5",
        dict(
            d_model=28,
            d_kv=10,
            d_ff=52,
            num_layers=2,
            num_decoder_layers=3,
            num_heads=3,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=12,
            feed_forward_proj="relu",
        ),
    ),
    (
        "t5-gated-gelu-untied",
        "t5",
        dict(
            d_model=28,
            d_kv=10,
            d_ff=44,
            num_layers=3,
            num_decoder_layers=2,
            num_heads=3,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=12,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
        ),
    ),
    (
        "t5-gated-gelu-tied",
        "t5",
        dict(
            d_model=28,
            d_kv=10,
            d_ff=44,
            num_layers=2,
            num_heads=3,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=12,
            feed_forward_proj="gated-gelu",
        ),
    ),
    (
        "marian",
        "marian",
        dict(
            d_model=36,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=3,
            decoder_attention_heads=3,
            encoder_ffn_dim=52,
            decoder_ffn_dim=44,
            max_position_embeddings=40,
            activation_function="swish",
            scale_embedding=True,
            pad_token_id=VOCAB - 1,
            decoder_start_token_id=VOCAB - 1,
            eos_token_id=0,
            forced_eos_token_id=0,
        ),
    ),
]
CASE_IDS = [c[0] for c in SEQ2SEQ_CASES]


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial seeded weights (norm weights near 1, non-zero biases and logits bias)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if not param.requires_grad:
                continue  # Marian's fixed sinusoidal position tables
            if "norm" in name.lower() and name.endswith("weight"):
                values = 1.0 + 0.2 * torch.randn(param.shape, generator=gen)
            elif name.endswith("bias"):
                values = 0.1 * torch.randn(param.shape, generator=gen)
            else:
                values = 0.2 * torch.randn(param.shape, generator=gen)
            param.copy_(values)
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias.copy_(0.3 * torch.randn(bias.shape, generator=gen))


def build_seq2seq(model_type: str, seed: int = 0, untie_head: bool = False, **kwargs):
    """A seeded tiny transformers ``AutoModelForSeq2SeqLM`` in eval mode. ``untie_head``
    gives the LM head weights of its own (as T5 v1.1 / flan checkpoints have)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    params = dict(vocab_size=VOCAB, dropout=0.1)
    if model_type == "t5":
        params = dict(vocab_size=VOCAB, dropout_rate=0.1, decoder_start_token_id=0)
    params.update(kwargs)
    config = AutoConfig.for_model(model_type, **params)
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(config)
    if untie_head:
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    _randomize(model, seed)
    model.eval()
    return model


def save_seq2seq_case(tmp_path, case, seed: int = 0):
    """(model_dir, transformers model) for a case of SEQ2SEQ_CASES."""
    name, model_type, kwargs = case
    kwargs = dict(kwargs)
    untie = kwargs.get("tie_word_embeddings") is False
    model = build_seq2seq(model_type, seed=seed, untie_head=untie, **kwargs)
    model_dir = Path(tmp_path) / f"{name}-{seed}"
    model.save_pretrained(model_dir)
    if untie:
        # What T5 v1.1 / flan checkpoints say (written by transformers 4.x).
        path = model_dir / "config.json"
        config = json.loads(path.read_text())
        config["tie_word_embeddings"] = False
        config.pop("scale_decoder_outputs", None)
        path.write_text(json.dumps(config))
    return model_dir, model


def source_batch(vocab: int, pad_id: int, lengths, seed: int = 0):
    """Right-padded source ids and mask (int64), no pad id among real tokens."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    allowed = np.array([i for i in range(vocab) if i != pad_id])
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.choice(allowed, size=n)
        mask[row, :n] = 1
    return ids, mask


def label_batch(vocab: int, pad_id: int, lengths, seed: int = 1):
    """Target ids padded with -100 (as training labels are)."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    labels = np.full((len(lengths), width), -100, dtype=np.int64)
    allowed = np.array([i for i in range(vocab) if i != pad_id])
    for row, n in enumerate(lengths):
        labels[row, :n] = rng.choice(allowed, size=n)
    return labels
