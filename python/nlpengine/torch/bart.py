"""BART: post-norm encoder-decoder layers (shared with Marian) and the conditional LM.

Weight names are transformers' ``BartForConditionalGeneration``'s: ``model.shared``,
``model.{encoder,decoder}.embed_positions`` (learned, offset by 2 rows),
``model.{encoder,decoder}.layernorm_embedding``, ``model.encoder.layers.N.self_attn.
{q,k,v,out}_proj``, ``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``; the
decoder layers add ``encoder_attn.*`` and ``encoder_attn_layer_norm``; ``lm_head`` (tied to
``model.shared`` unless the checkpoint has its own) and the ``final_logits_bias`` buffer.
Word embeddings are multiplied by sqrt(d_model) when ``scale_embedding`` is set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.encoder import get_activation
from nlpengine.torch.seq2seq import Seq2SeqLM, additive_mask, causal_mask, padding_keep
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = [
    "BartDecoderLayer",
    "BartEncoderLayer",
    "BartForConditionalGeneration",
    "Seq2SeqAttention",
    "init_bart_module",
]

#: BART's learned position tables have two extra leading rows (a fairseq legacy).
POSITION_OFFSET = 2


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
        b, t, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, y.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj(x)),
            heads(self.k_proj(source)),
            heads(self.v_proj(source)),
            attn_mask=mask,
            dropout_p=self.dropout_p if self.training else 0.0,
            scale=self.head_dim**-0.5,
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1))


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
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()


class _Stack(nn.Module):
    """One side (encoder or decoder) of BART: ``embed_tokens``, ``embed_positions``,
    ``layernorm_embedding``, ``layers``."""

    def __init__(self, config: Seq2SeqConfig, embed_tokens: nn.Embedding, decoder: bool):
        super().__init__()
        self.config = config
        self.embed_tokens = embed_tokens
        self.embed_positions = nn.Embedding(
            config.max_position_embeddings + POSITION_OFFSET, config.d_model
        )
        layer = BartDecoderLayer if decoder else BartEncoderLayer
        count = config.decoder_layers if decoder else config.encoder_layers
        self.layers = nn.ModuleList(layer(config) for _ in range(count))
        self.layernorm_embedding = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        limit = self.config.max_position_embeddings
        if length > limit:
            raise ValueError(f"sequence length {length} exceeds the model's maximum {limit}")
        positions = torch.arange(length, device=ids.device) + POSITION_OFFSET
        x = self.embed_tokens(ids) * self.embed_scale + self.embed_positions(positions)[None]
        x = self.layernorm_embedding(x)
        return F.dropout(x, self.config.dropout, self.training)


class _BartModel(nn.Module):
    """``model``: ``shared`` then the encoder and decoder stacks that reuse it."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.shared = nn.Embedding(config.vocab_size, config.d_model, padding_idx=_pad(config))
        self.encoder = _Stack(config, self.shared, decoder=False)
        self.decoder = _Stack(config, self.shared, decoder=True)


def _pad(config: Seq2SeqConfig) -> int | None:
    pad = config.pad_token_id
    return pad if pad is not None and 0 <= pad < config.vocab_size else None


class BartForConditionalGeneration(Seq2SeqLM):
    """BART with its LM head, weight for weight transformers' class of the same name."""

    optional_weights = ("final_logits_bias",)

    def __init__(self, config: Seq2SeqConfig, *, tie_lm_head: bool = True):
        super().__init__(config)
        if config.model_type != "bart":
            raise ValueError(f"expected a bart config, got model_type {config.model_type!r}")
        self.model = _BartModel(config)
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.lm_head = None if tie_lm_head else nn.Linear(config.d_model, config.vocab_size, False)

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        return (
            "model.shared.weight",
            "model.encoder.embed_tokens.weight",
            "model.decoder.embed_tokens.weight",
        )

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
        weight = self.model.shared.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(decoder_hidden, weight) + self.final_logits_bias
