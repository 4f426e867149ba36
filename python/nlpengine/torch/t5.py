"""T5 (v1.0 and v1.1 / flan): pre-norm blocks with RMS norms, no biases, relative position
buckets instead of position embeddings, and unscaled dot-product attention.

Weight names are transformers' ``T5ForConditionalGeneration``'s: ``shared``,
``{encoder,decoder}.block.N.layer.0.SelfAttention.{q,k,v,o}`` (block 0 also
``relative_attention_bias``), ``layer.0.layer_norm``; decoder blocks add
``layer.1.EncDecAttention.{q,k,v,o}`` and ``layer.1.layer_norm``; the last layer of a block
is ``DenseReluDense.{wi,wo}`` (``feed_forward_proj: relu``) or ``DenseReluDense.{wi_0,wi_1,wo}``
(``gated-*``) with its ``layer_norm``; ``{encoder,decoder}.final_layer_norm``; ``lm_head``
when the checkpoint has one of its own (v1.1), else the LM head is ``shared``. Tied models
scale the decoder output by d_model**-0.5 before the head (see ``Seq2SeqConfig``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.encoder import get_activation
from nlpengine.torch.seq2seq import (
    Seq2SeqLM,
    additive_mask,
    causal_mask,
    multi_head_attention,
    padding_keep,
)
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = ["T5ForConditionalGeneration", "relative_position_bucket"]


def relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """T5's bucket of each (memory - query) offset: exact buckets for small distances,
    logarithmic ones up to ``max_distance``; a bidirectional encoder spends half the
    buckets on positive offsets, a causal decoder only sees non-positive ones."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    large = (
        max_exact
        + (
            torch.log(distance.float() / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).long()
    )
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class T5LayerNorm(nn.Module):
    """RMS norm: x / sqrt(mean(x^2) + eps) * weight (no mean, no bias)."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps)).to(self.weight.dtype)


class T5Attention(nn.Module):
    def __init__(self, config: Seq2SeqConfig, has_relative_attention_bias: bool, decoder: bool):
        super().__init__()
        self.num_heads = config.encoder_attention_heads
        self.d_kv = config.d_kv
        inner = self.num_heads * self.d_kv
        self.dropout_p = config.attention_dropout
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.bidirectional = not decoder
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, self.num_heads)
        else:
            self.relative_attention_bias = None

    def position_bias(self, query_length: int, key_length: int, device) -> torch.Tensor:
        """(1, heads, query, key) learned bias of each relative position's bucket."""
        context = torch.arange(query_length, device=device)[:, None]
        memory = torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_bucket(
            memory - context, self.bidirectional, self.num_buckets, self.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor, key_value: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``bias``: additive (mask + position bias), broadcastable to (b, h, q, k)."""
        source = x if key_value is None else key_value
        out = multi_head_attention(
            self.q(x),
            self.k(source),
            self.v(source),
            bias,
            self.num_heads,
            self.dropout_p if self.training else 0.0,
            1.0,
        )
        return self.o(out)


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config: Seq2SeqConfig, has_relative_attention_bias: bool, decoder: bool):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias, decoder)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.SelfAttention(self.layer_norm(x), bias))


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.EncDecAttention = T5Attention(config, False, decoder=True)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, encoder_hidden) -> torch.Tensor:
        return x + self.dropout(self.EncDecAttention(self.layer_norm(x), mask, encoder_hidden))


class T5DenseReluDense(nn.Module):
    """``wi`` -> act -> ``wo``, or gated: act(``wi_0``) * ``wi_1`` -> ``wo``."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        d, ff = config.d_model, config.encoder_ffn_dim
        self.gated = config.is_gated_act
        if self.gated:
            self.wi_0 = nn.Linear(d, ff, bias=False)
            self.wi_1 = nn.Linear(d, ff, bias=False)
        else:
            self.wi = nn.Linear(d, ff, bias=False)
        self.wo = nn.Linear(ff, d, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.act = get_activation(config.activation_function)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            h = self.act(self.wi_0(x)) * self.wi_1(x)
        else:
            h = self.act(self.wi(x))
        return self.wo(self.dropout(h))


class T5LayerFF(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.DenseReluDense = T5DenseReluDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class T5Block(nn.Module):
    def __init__(self, config: Seq2SeqConfig, first: bool, decoder: bool):
        super().__init__()
        self.decoder = decoder
        layers: list[nn.Module] = [T5LayerSelfAttention(config, first, decoder)]
        if decoder:
            layers.append(T5LayerCrossAttention(config))
        layers.append(T5LayerFF(config))
        self.layer = nn.ModuleList(layers)

    def forward(self, x, self_bias, encoder_hidden=None, cross_mask=None):
        x = self.layer[0](x, self_bias)
        if self.decoder:
            x = self.layer[1](x, cross_mask, encoder_hidden)
        return self.layer[-1](x)


class T5Stack(nn.Module):
    def __init__(self, config: Seq2SeqConfig, embed_tokens: nn.Embedding, decoder: bool):
        super().__init__()
        self.embed_tokens = embed_tokens
        count = config.decoder_layers if decoder else config.encoder_layers
        self.block = nn.ModuleList(T5Block(config, i == 0, decoder) for i in range(count))
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def relative_bias(self, query_length: int, key_length: int, device) -> torch.Tensor:
        attention = self.block[0].layer[0].SelfAttention
        return attention.position_bias(query_length, key_length, device)


class T5ForConditionalGeneration(Seq2SeqLM):
    """T5 with its LM head, weight for weight transformers' class of the same name."""

    model_type = "t5"

    def __init__(self, config: Seq2SeqConfig, *, tie_lm_head: bool = True):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, decoder=False)
        self.decoder = T5Stack(config, self.shared, decoder=True)
        self.lm_head = None if tie_lm_head else nn.Linear(config.d_model, config.vocab_size, False)

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        return ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight")

    def reset_parameters(self) -> None:
        """transformers' T5 initialisation (initializer_factor scaled)."""
        c = self.config
        f = c.initializer_factor
        with torch.no_grad():
            self.shared.weight.normal_(0.0, f)
            if self.lm_head is not None:
                self.lm_head.weight.normal_(0.0, f)
            for module in self.modules():
                if isinstance(module, T5LayerNorm):
                    module.weight.fill_(f)
                elif isinstance(module, T5DenseReluDense):
                    for name in ("wi", "wi_0", "wi_1"):
                        if hasattr(module, name):
                            getattr(module, name).weight.normal_(0.0, f * c.d_model**-0.5)
                    module.wo.weight.normal_(0.0, f * c.encoder_ffn_dim**-0.5)
                elif isinstance(module, T5Attention):
                    inner = module.num_heads * module.d_kv
                    module.q.weight.normal_(0.0, f * (c.d_model * c.d_kv) ** -0.5)
                    module.k.weight.normal_(0.0, f * c.d_model**-0.5)
                    module.v.weight.normal_(0.0, f * c.d_model**-0.5)
                    module.o.weight.normal_(0.0, f * inner**-0.5)
                    if module.relative_attention_bias is not None:
                        module.relative_attention_bias.weight.normal_(0.0, f * c.d_model**-0.5)

    def encode(self, input_ids, attention_mask):
        stack = self.encoder
        x = stack.dropout(stack.embed_tokens(input_ids))
        length = x.shape[1]
        bias = stack.relative_bias(length, length, x.device) + additive_mask(
            padding_keep(attention_mask), x.dtype
        )
        for block in stack.block:
            x = block(x, bias)
        return stack.dropout(stack.final_layer_norm(x))

    def decode(
        self, decoder_input_ids, encoder_hidden, attention_mask, decoder_attention_mask=None
    ):
        stack = self.decoder
        x = stack.dropout(stack.embed_tokens(decoder_input_ids))
        length = x.shape[1]
        self_bias = stack.relative_bias(length, length, x.device) + causal_mask(
            length, decoder_attention_mask, x.dtype, x.device
        )
        cross_mask = additive_mask(padding_keep(attention_mask), x.dtype)
        for block in stack.block:
            x = block(x, self_bias, encoder_hidden, cross_mask)
        return stack.dropout(stack.final_layer_norm(x))

    def lm_logits(self, decoder_hidden):
        if self.config.scale_decoder_outputs:
            decoder_hidden = decoder_hidden * self.config.d_model**-0.5
        weight = self.shared.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(decoder_hidden, weight)
