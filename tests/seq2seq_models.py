"""Tiny seeded transformers encoder-decoder models (bart, t5 v1.0/v1.1, marian) saved in
Hugging Face layout: the one place the tests build them (runtime and torch parity tests,
bad-input tests, summarization fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

SEQ2SEQ_VOCAB = 96

_BART_SIZES = dict(
    vocab_size=SEQ2SEQ_VOCAB,
    d_model=32,
    encoder_layers=2,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=56,
    decoder_ffn_dim=56,
    max_position_embeddings=64,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
)
_T5_SIZES = dict(
    vocab_size=SEQ2SEQ_VOCAB,
    d_model=32,
    dropout_rate=0.0,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)

#: One config per architecture (the runtime parity tests), keyed by a short name;
#: "model_type" picks the transformers class.
SEQ2SEQ_CONFIGS: dict[str, dict] = {
    "bart": dict(
        _BART_SIZES,
        model_type="bart",
        activation_function="gelu",
        scale_embedding=True,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
    ),
    "marian": dict(
        _BART_SIZES,
        model_type="marian",
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=SEQ2SEQ_VOCAB - 1,
        eos_token_id=0,
        decoder_start_token_id=SEQ2SEQ_VOCAB - 1,
        forced_eos_token_id=0,
    ),
    # (transformers' beam search cache breaks when a T5 decoder has fewer layers than
    # its encoder, so both stacks have the same depth here.)
    # T5 v1.0: ReLU, tied LM head with the d_model**-0.5 rescale.
    "t5": dict(
        _T5_SIZES,
        model_type="t5",
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
    ),
    # T5 v1.1 / flan: gated GELU, no rescale (tie_word_embeddings: false).
    "t5-v1.1": dict(
        _T5_SIZES,
        model_type="t5",
        d_kv=12,
        d_ff=40,
        num_layers=3,
        num_decoder_layers=3,
        num_heads=3,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=24,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
}

ODD_VOCAB = 97  # prime: catches a vocab/d_model mix-up

_ODD_BART_SIZES = dict(vocab_size=ODD_VOCAB, dropout=0.1, d_model=36, max_position_embeddings=40)
_ODD_T5_SIZES = dict(
    vocab_size=ODD_VOCAB,
    dropout_rate=0.1,
    decoder_start_token_id=0,
    d_model=28,
    d_kv=10,
    num_heads=3,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=12,
)

#: Configs with sizes that catch mix-ups (the torch parity tests): d_model 36 = 3 heads
#: x 12 with other head counts per stack (BART, Marian), T5 d_model 28 with d_kv 10 x 3
#: heads (inner 30 != d_model), FFN 52/44, encoder and decoder of different depths; T5
#: relu tied, gated-gelu tied and untied (the v1.0 and v1.1 layouts).
ODD_SIZE_CONFIGS: dict[str, dict] = {
    "bart": dict(
        _ODD_BART_SIZES,
        model_type="bart",
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=3,
        decoder_attention_heads=4,
        encoder_ffn_dim=52,
        decoder_ffn_dim=44,
        activation_function="gelu",
    ),
    "bart-scaled": dict(
        _ODD_BART_SIZES,
        model_type="bart",
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=3,
        encoder_ffn_dim=40,
        decoder_ffn_dim=40,
        scale_embedding=True,
        activation_function="relu",
    ),
    "t5-relu-tied": dict(
        _ODD_T5_SIZES,
        model_type="t5",
        d_ff=52,
        num_layers=2,
        num_decoder_layers=3,
        feed_forward_proj="relu",
    ),
    "t5-gated-gelu-untied": dict(
        _ODD_T5_SIZES,
        model_type="t5",
        d_ff=44,
        num_layers=3,
        num_decoder_layers=2,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
    "t5-gated-gelu-tied": dict(
        _ODD_T5_SIZES,
        model_type="t5",
        d_ff=44,
        num_layers=2,
        feed_forward_proj="gated-gelu",
    ),
    "marian": dict(
        _ODD_BART_SIZES,
        model_type="marian",
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=3,
        decoder_attention_heads=3,
        encoder_ffn_dim=52,
        decoder_ffn_dim=44,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=ODD_VOCAB - 1,
        decoder_start_token_id=ODD_VOCAB - 1,
        eos_token_id=0,
        forced_eos_token_id=0,
    ),
}

#: Weight scale of :func:`randomize_weights` that makes a tiny model's predictions
#: decisive (no near-ties), as token-for-token generation parity needs.
DECISIVE_STD = 0.3


def randomize_weights(model: torch.nn.Module, seed: int, std: float = 0.2) -> None:
    """Seeded non-trivial weights, where the default init (norm weights 1, zero biases,
    tiny matrices, every logit nearly equal) would hide bugs: norm weights 1 + N(0, std),
    biases N(0, std / 2), other weights N(0, std), ``final_logits_bias`` N(0, 1.5 std).
    Frozen parameters (Marian's sinusoidal positions) keep their values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if not param.requires_grad:
                continue
            if "norm" in name.lower() and name.endswith("weight"):
                values = 1.0 + std * torch.randn(param.shape, generator=gen)
            elif name.endswith("bias"):
                values = std / 2 * torch.randn(param.shape, generator=gen)
            else:
                values = std * torch.randn(param.shape, generator=gen)
            param.copy_(values)
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias.copy_(1.5 * std * torch.randn(bias.shape, generator=gen))


def build_seq2seq(
    config: dict, seed: int = 0, *, std: float | None = 0.2, untie_head: bool = False
):
    """A transformers ``AutoModelForSeq2SeqLM`` of ``config`` (with its "model_type") in
    eval mode, initialised under ``torch.manual_seed(seed)`` and then given
    :func:`randomize_weights` of ``std`` (None: transformers' own initialisation).
    ``untie_head`` gives the LM head weights of its own (as T5 v1.1 / flan have)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    settings = dict(config)
    model_type = settings.pop("model_type")
    hf_config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(hf_config)
    if untie_head:
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    if std is not None:
        randomize_weights(model, seed, std)
    return model.eval()


def save_seq2seq(
    path: Path, config: dict, seed: int = 0, *, std: float | None = 0.2, untie_head: bool = False
):
    """:func:`build_seq2seq`, saved in Hugging Face layout at ``path``; returns the
    transformers model. With ``untie_head`` config.json says what T5 v1.1 / flan
    checkpoints written by transformers 4.x say (tie_word_embeddings: false, no
    scale_decoder_outputs)."""
    model = build_seq2seq(config, seed, std=std, untie_head=untie_head)
    path = Path(path)
    model.save_pretrained(path)
    if untie_head:
        config_path = path / "config.json"
        saved = json.loads(config_path.read_text())
        saved["tie_word_embeddings"] = False
        saved.pop("scale_decoder_outputs", None)
        config_path.write_text(json.dumps(saved))
    return model
