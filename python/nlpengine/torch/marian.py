"""Marian (opus-mt): BART's post-norm layers with fixed sinusoidal positions, no embedding
LayerNorm, and word embeddings scaled by sqrt(d_model) when ``scale_embedding`` is set.

Weight names are transformers' ``MarianMTModel``'s. With ``share_encoder_decoder_embeddings``
(the default) ``model.shared`` is the encoder's, the decoder's and the LM head's matrix;
without it the encoder and decoder have their own ``embed_tokens`` (the decoder's of
``decoder_vocab_size`` rows) and the LM head is tied to the decoder's. The position tables
are not stored (transformers leaves them out of its checkpoints too); ``final_logits_bias``
is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.bart import BartDecoderLayer, BartEncoderLayer, init_bart_module
from nlpengine.torch.seq2seq import Seq2SeqLM, additive_mask, causal_mask, padding_keep
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = ["MarianMTModel", "marian_positions"]


def marian_positions(n_pos: int, dim: int) -> torch.Tensor:
    """Marian's sinusoidal table: sines in the first half of each row, cosines in the
    second (not interleaved), angle pos / 10000^(2i/dim)."""
    pos = torch.arange(n_pos, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    sentinel = (dim + 1) // 2
    table = torch.empty(n_pos, dim, dtype=torch.float64)
    table[:, :sentinel] = torch.sin(angles[:, 0::2])
    table[:, sentinel:] = torch.cos(angles[:, 1::2])
    return table.float()


class _Stack(nn.Module):
    def __init__(self, config: Seq2SeqConfig, embed_tokens: nn.Embedding, decoder: bool):
        super().__init__()
        self.config = config
        self.embed_tokens = embed_tokens
        layer = BartDecoderLayer if decoder else BartEncoderLayer
        count = config.decoder_layers if decoder else config.encoder_layers
        self.layers = nn.ModuleList(layer(config) for _ in range(count))
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        table = marian_positions(config.max_position_embeddings, config.d_model)
        self.register_buffer("positions", table, persistent=False)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        limit = self.config.max_position_embeddings
        if length > limit:
            raise ValueError(f"sequence length {length} exceeds the model's maximum {limit}")
        x = self.embed_tokens(ids) * self.embed_scale + self.positions[:length][None]
        return F.dropout(x, self.config.dropout, self.training)


def _embedding(config: Seq2SeqConfig, rows: int) -> nn.Embedding:
    pad = config.pad_token_id
    return nn.Embedding(rows, config.d_model, padding_idx=pad if 0 <= pad < rows else None)


class _MarianModel(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.share_encoder_decoder_embeddings:
            self.shared = _embedding(config, config.vocab_size)
            encoder_embed = decoder_embed = self.shared
        else:
            self.shared = None
            encoder_embed = _embedding(config, config.vocab_size)
            decoder_embed = _embedding(config, config.target_vocab_size)
        self.encoder = _Stack(config, encoder_embed, decoder=False)
        self.decoder = _Stack(config, decoder_embed, decoder=True)


class MarianMTModel(Seq2SeqLM):
    """Marian with its LM head, weight for weight transformers' class of the same name."""

    optional_weights = ("final_logits_bias",)

    def __init__(self, config: Seq2SeqConfig, *, tie_lm_head: bool = True):
        super().__init__(config)
        if config.model_type != "marian":
            raise ValueError(f"expected a marian config, got model_type {config.model_type!r}")
        self.model = _MarianModel(config)
        vocab = config.target_vocab_size
        self.register_buffer("final_logits_bias", torch.zeros(1, vocab))
        self.lm_head = None if tie_lm_head else nn.Linear(config.d_model, vocab, bias=False)

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        if config.share_encoder_decoder_embeddings:
            return (
                "model.shared.weight",
                "model.encoder.embed_tokens.weight",
                "model.decoder.embed_tokens.weight",
            )
        return ("model.decoder.embed_tokens.weight",)

    @property
    def lm_head_tied(self) -> bool:
        return self.lm_head is None

    def weight_aliases(self) -> dict[str, tuple[str, ...]]:
        names = self.shared_names(self.config)
        extra = ("lm_head.weight",) if self.lm_head_tied else ()
        return {names[0]: (*names[1:], *extra)}

    def reset_parameters(self) -> None:
        for module in self.modules():
            init_bart_module(module, self.config.init_std)
        self.final_logits_bias.zero_()

    def encode(self, input_ids, attention_mask):
        encoder = self.model.encoder
        x = encoder.embed(input_ids)
        mask = additive_mask(padding_keep(attention_mask), x.dtype)
        for layer in encoder.layers:
            x = layer(x, mask)
        return x

    def decode(
        self, decoder_input_ids, encoder_hidden, attention_mask, decoder_attention_mask=None
    ):
        decoder = self.model.decoder
        x = decoder.embed(decoder_input_ids)
        self_mask = causal_mask(x.shape[1], decoder_attention_mask, x.dtype, x.device)
        cross_mask = additive_mask(padding_keep(attention_mask), x.dtype)
        for layer in decoder.layers:
            x = layer(x, self_mask, encoder_hidden, cross_mask)
        return x

    def lm_logits(self, decoder_hidden):
        if self.lm_head is not None:
            weight = self.lm_head.weight
        else:
            weight = self.model.decoder.embed_tokens.weight
        return F.linear(decoder_hidden, weight) + self.final_logits_bias
