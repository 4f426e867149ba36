"""What BART and Marian share: post-norm encoder and decoder layers, the stacks of them,
the ``model`` that holds both stacks and the token embeddings, and the conditional LM.

The two differ only in their position embeddings (BART's learned, Marian's fixed
sinusoids), BART's LayerNorm after the embeddings, and which embedding names a checkpoint
stores (see :mod:`nlpengine.torch.bart` and :mod:`nlpengine.torch.marian`).

Weight names are transformers': ``model.shared`` (when the stacks share their token
embeddings), ``model.{encoder,decoder}.embed_tokens``, ``embed_positions``,
``layernorm_embedding``, ``layers.N.self_attn.{q,k,v,out}_proj``, ``self_attn_layer_norm``,
``fc1``, ``fc2``, ``final_layer_norm``; the decoder layers add ``encoder_attn.*`` and
``encoder_attn_layer_norm``; ``lm_head`` (tied to the decoder's token embeddings unless the
checkpoint has its own) and the ``final_logits_bias`` buffer. Token embeddings are
multiplied by sqrt(d_model) when ``scale_embedding`` is set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.encoder import get_activation, init_module
from nlpengine.torch.seq2seq import (
    Seq2SeqLM,
    additive_mask,
    causal_mask,
    multi_head_attention,
    padding_keep,
)
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = [
    "BartDecoderLayer",
    "BartEncoderLayer",
    "BartFamilyLM",
    "BartFamilyModel",
    "BartFamilyStack",
    "Seq2SeqAttention",
    "init_bart_module",
]


class Seq2SeqAttention(nn.Module):
    """Multi-head attention with biased ``q_proj``/``k_proj``/``v_proj``/``out_proj``
    (self-attention, or cross-attention over ``key_value``)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout_p = dropout
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, key_value: torch.Tensor | None = None
    ) -> torch.Tensor:
        source = x if key_value is None else key_value
        out = multi_head_attention(
            self.q_proj(x),
            self.k_proj(source),
            self.v_proj(source),
            mask,
            self.num_heads,
            self.dropout_p if self.training else 0.0,
            self.head_dim**-0.5,
        )
        return self.out_proj(out)


class _FeedForward(nn.Module):
    """Mixin: ``fc1`` -> activation -> dropout -> ``fc2`` -> dropout."""

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.act(self.fc1(x)), self.activation_dropout, self.training)
        return F.dropout(self.fc2(x), self.dropout, self.training)


class BartEncoderLayer(_FeedForward):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        d = config.d_model
        eps = config.layer_norm_eps
        self.self_attn = Seq2SeqAttention(
            d, config.encoder_attention_heads, config.attention_dropout
        )
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.fc1 = nn.Linear(d, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)
        self.act = get_activation(config.activation_function)
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attended = F.dropout(self.self_attn(x, mask), self.dropout, self.training)
        x = self.self_attn_layer_norm(x + attended)
        return self.final_layer_norm(x + self._ffn(x))


class BartDecoderLayer(_FeedForward):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        d = config.d_model
        eps = config.layer_norm_eps
        heads = config.decoder_attention_heads
        self.self_attn = Seq2SeqAttention(d, heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.encoder_attn = Seq2SeqAttention(d, heads, config.attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.fc1 = nn.Linear(d, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)
        self.act = get_activation(config.activation_function)
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor,
        encoder_hidden: torch.Tensor,
        cross_mask: torch.Tensor,
    ) -> torch.Tensor:
        attended = F.dropout(self.self_attn(x, self_mask), self.dropout, self.training)
        x = self.self_attn_layer_norm(x + attended)
        attended = F.dropout(
            self.encoder_attn(x, cross_mask, encoder_hidden), self.dropout, self.training
        )
        x = self.encoder_attn_layer_norm(x + attended)
        return self.final_layer_norm(x + self._ffn(x))


def init_bart_module(module: nn.Module, std: float) -> None:
    """transformers' BART/Marian initialisation: normal(0, std) linear and embedding
    weights (zero padding row), zero biases, LayerNorm 1/0."""
    init_module(module, std)
    if isinstance(module, nn.Embedding):
        with torch.no_grad():
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()


class BartFamilyStack(nn.Module):
    """One side (encoder or decoder): ``embed_tokens``, ``embed_positions`` (a module
    mapping position ids 0.. to their (positions, d_model) embeddings), ``layers`` and,
    for BART, ``layernorm_embedding``."""

    def __init__(
        self,
        config: Seq2SeqConfig,
        embed_tokens: nn.Embedding,
        embed_positions: nn.Module,
        *,
        decoder: bool,
        embedding_norm: bool,
    ):
        super().__init__()
        self.config = config
        self.embed_tokens = embed_tokens
        self.embed_positions = embed_positions
        layer = BartDecoderLayer if decoder else BartEncoderLayer
        count = config.decoder_layers if decoder else config.encoder_layers
        self.layers = nn.ModuleList(layer(config) for _ in range(count))
        if embedding_norm:
            self.layernorm_embedding = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        else:
            self.layernorm_embedding = None
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        limit = self.config.max_position_embeddings
        if length > limit:
            raise ValueError(f"sequence length {length} exceeds the model's maximum {limit}")
        positions = self.embed_positions(torch.arange(length, device=ids.device))
        x = self.embed_tokens(ids) * self.embed_scale + positions[None]
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        return F.dropout(x, self.config.dropout, self.training)


def _token_embedding(config: Seq2SeqConfig, rows: int) -> nn.Embedding:
    pad = config.pad_token_id
    padding_idx = pad if pad is not None and 0 <= pad < rows else None
    return nn.Embedding(rows, config.d_model, padding_idx=padding_idx)


class BartFamilyModel(nn.Module):
    """``model``: ``shared`` then the encoder and decoder stacks that reuse it, or (Marian
    without ``share_encoder_decoder_embeddings``) stacks with token embeddings of their
    own, the decoder's ``target_vocab_size`` rows, and ``shared`` None."""

    def __init__(self, config: Seq2SeqConfig, positions: type[nn.Module], *, embedding_norm: bool):
        """``positions(max_position_embeddings, d_model)``: each stack's ``embed_positions``."""
        super().__init__()
        if config.share_encoder_decoder_embeddings:
            self.shared = _token_embedding(config, config.vocab_size)
            encoder_embed = decoder_embed = self.shared
        else:
            self.shared = None
            encoder_embed = _token_embedding(config, config.vocab_size)
            decoder_embed = _token_embedding(config, config.target_vocab_size)

        def stack(embed_tokens: nn.Embedding, decoder: bool) -> BartFamilyStack:
            embed_positions = positions(config.max_position_embeddings, config.d_model)
            return BartFamilyStack(
                config,
                embed_tokens,
                embed_positions,
                decoder=decoder,
                embedding_norm=embedding_norm,
            )

        self.encoder = stack(encoder_embed, decoder=False)
        self.decoder = stack(decoder_embed, decoder=True)


class BartFamilyLM(Seq2SeqLM):
    """The conditional LM of BART and Marian: ``model``, the ``final_logits_bias`` buffer
    (zeros when the checkpoint has none) and ``lm_head``. Subclasses say which
    ``position_embedding`` module their stacks have and whether an ``embedding_norm``
    (``layernorm_embedding``) follows the embeddings."""

    optional_weights = ("final_logits_bias",)
    #: Called with (max_position_embeddings, d_model); maps position ids to embeddings.
    position_embedding: type[nn.Module]
    embedding_norm: bool

    def __init__(self, config: Seq2SeqConfig, *, tie_lm_head: bool = True):
        super().__init__(config)
        self.model = BartFamilyModel(
            config, self.position_embedding, embedding_norm=self.embedding_norm
        )
        vocab = config.target_vocab_size
        self.register_buffer("final_logits_bias", torch.zeros(1, vocab))
        self.lm_head = None if tie_lm_head else nn.Linear(config.d_model, vocab, bias=False)

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
