"""Tiny random-weight encoder-decoder models (bart, t5 v1.0/v1.1, marian) saved in
Hugging Face layout, for parity tests against transformers."""

from __future__ import annotations

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

#: Configs keyed by a short name; "model_type" picks the transformers class.
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
        model_type="t5",
        vocab_size=SEQ2SEQ_VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj="relu",
        dropout_rate=0.0,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    ),
    # T5 v1.1 / flan: gated GELU, untied LM head, no rescale.
    "t5-v1.1": dict(
        model_type="t5",
        vocab_size=SEQ2SEQ_VOCAB,
        d_model=32,
        d_kv=12,
        d_ff=40,
        num_layers=3,
        num_decoder_layers=3,
        num_heads=3,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=24,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    ),
}


def build_seq2seq(name: str, seed: int = 0):
    """A transformers seq2seq LM with seeded weights large enough that its
    predictions are decisive (the default init makes every logit nearly equal)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    settings = dict(SEQ2SEQ_CONFIGS[name])
    model_type = settings.pop("model_type")
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "embed_positions" in pname and model_type == "marian":
                continue  # fixed sinusoids
            if p.dim() == 1 and ("norm" in pname):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.copy_(
                0.5 * torch.randn(model.final_logits_bias.shape, generator=generator)
            )
    return model


def save_seq2seq(name: str, path: Path, seed: int = 0):
    """Build and save in HF layout; returns the transformers model."""
    model = build_seq2seq(name, seed)
    model.save_pretrained(path)
    return model
