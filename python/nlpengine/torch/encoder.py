"""Transformer layers and the encoder backbone of every supported model type.

Module names reproduce transformers' weight names:

* BERT layout (bert, roberta, xlm-roberta, camembert, electra):
  ``encoder.layer.N.attention.self.{query,key,value}``, ``attention.output.{dense,LayerNorm}``,
  ``intermediate.dense``, ``output.{dense,LayerNorm}``; ELECTRA adds
  ``embeddings_project`` when embedding_size != hidden_size; BERT-like models may
  carry ``pooler.dense``.
* DistilBERT: ``transformer.layer.N.attention.{q_lin,k_lin,v_lin,out_lin}``,
  ``sa_layer_norm``, ``ffn.{lin1,lin2}``, ``output_layer_norm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.config import EncoderConfig
from nlpengine.torch.embeddings import Embeddings

__all__ = [
    "ACTIVATIONS",
    "BertLayer",
    "DistilBertLayer",
    "Encoder",
    "Pooler",
    "SelfAttention",
    "check_input_ids",
    "extended_attention_mask",
    "get_activation",
    "init_module",
]


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    # gelu_new / gelu_fast: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3.0))))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unsupported activation {name!r} (supported: {', '.join(sorted(ACTIVATIONS))})"
        ) from None


def extended_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, seq) 1/0 mask -> additive (batch, 1, 1, seq) mask: 0 or the dtype's minimum."""
    keep = attention_mask.to(torch.bool)[:, None, None, :]
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    return torch.where(keep, zero, torch.finfo(dtype).min)


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, dropout: float
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v on (batch, heads, seq, head_size) tensors."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


class SelfAttention(nn.Module):
    """BERT's ``attention.self``: query / key / value projections and scaled dot-product."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.num_heads, self.head_size).transpose(1, 2)

        out = _attend(
            heads(self.query(x)),
            heads(self.key(x)),
            heads(self.value(x)),
            mask,
            self.dropout_p if self.training else 0.0,
        )
        return out.transpose(1, 2).reshape(b, s, -1)


class AddNorm(nn.Module):
    """``dense`` -> dropout -> ``LayerNorm(. + residual)`` (BERT's SelfOutput / Output)."""

    def __init__(self, in_size: int, out_size: int, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.LayerNorm = nn.LayerNorm(out_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.self = SelfAttention(config)
        self.output = AddNorm(config.hidden_size, config.hidden_size, config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = AddNorm(config.intermediate_size, config.hidden_size, config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class DistilBertAttention(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.q_lin = nn.Linear(h, h)
        self.k_lin = nn.Linear(h, h)
        self.v_lin = nn.Linear(h, h)
        self.out_lin = nn.Linear(h, h)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.num_heads, self.head_size).transpose(1, 2)

        out = _attend(
            heads(self.q_lin(x)),
            heads(self.k_lin(x)),
            heads(self.v_lin(x)),
            mask,
            self.dropout_p if self.training else 0.0,
        )
        return self.out_lin(out.transpose(1, 2).reshape(b, s, -1))


class FFN(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.lin1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.lin2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = get_activation(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.lin2(self.act(self.lin1(x))))


class DistilBertLayer(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.attention = DistilBertAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class LayerStack(nn.Module):
    """``encoder`` (BERT layout) or ``transformer`` (DistilBERT): ``layer.N``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        block = DistilBertLayer if config.is_distilbert else BertLayer
        self.layer = nn.ModuleList(block(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class Pooler(nn.Module):
    """BERT's pooler: tanh(dense(first token))."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


def check_input_ids(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, seq) token ids as int64 and their attention mask (all ones when None);
    a ValueError for another rank or a mask of another shape."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids: expected shape (batch, seq), got {tuple(input_ids.shape)}")
    input_ids = input_ids.long()
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    elif attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids "
            f"shape {tuple(input_ids.shape)}"
        )
    return input_ids, attention_mask


class Encoder(nn.Module):
    """The encoder backbone: embeddings -> [embeddings_project] -> layers.

    ``forward`` returns ``last_hidden_state`` (batch, seq, hidden). The optional
    ``pooler`` (BERT family) is applied by :meth:`pool`.
    """

    def __init__(self, config: EncoderConfig, *, add_pooler: bool = False):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = nn.Linear(config.embedding_size, config.hidden_size)
        else:
            self.embeddings_project = None
        if config.is_distilbert:
            self.transformer = LayerStack(config)
        else:
            self.encoder = LayerStack(config)
        self.pooler = Pooler(config) if add_pooler else None

    @property
    def layers(self) -> LayerStack:
        return self._modules["transformer" if self.config.is_distilbert else "encoder"]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        input_ids, attention_mask = check_input_ids(input_ids, attention_mask)
        if token_type_ids is not None:
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids shape {tuple(token_type_ids.shape)} differs from input_ids "
                    f"shape {tuple(input_ids.shape)}"
                )
            token_type_ids = token_type_ids.long()
        x = self.embeddings(input_ids, token_type_ids)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        mask = extended_attention_mask(attention_mask, x.dtype)
        return self.layers(x, mask)

    def pool(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        if self.pooler is None:
            raise ValueError("this encoder has no pooler")
        return self.pooler(last_hidden_state)

    def reset_parameters(self) -> None:
        """transformers' initialisation of every weight."""
        std = self.config.initializer_range
        self.embeddings.reset_parameters(std)
        for module in self.modules():
            init_module(module, std)


def init_module(module: nn.Module, std: float) -> None:
    """transformers' ``_init_weights`` for Linear (normal/zero bias) and LayerNorm (1/0)."""
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm) and module.weight is not None:
            module.weight.fill_(1.0)
            module.bias.zero_()
