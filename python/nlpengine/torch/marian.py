"""Marian (opus-mt): the BART-family encoder-decoder with fixed sinusoidal positions and no
LayerNorm after the embeddings.

Weight names are transformers' ``MarianMTModel``'s (see :mod:`nlpengine.torch.bart_family`).
With ``share_encoder_decoder_embeddings`` (the default) ``model.shared`` is the encoder's,
the decoder's and the LM head's matrix; without it the encoder and decoder have their own
``embed_tokens`` (the decoder's of ``decoder_vocab_size`` rows) and the LM head is tied to
the decoder's. The position tables are not stored (transformers leaves them out of its
checkpoints too); ``final_logits_bias`` is.
"""

from __future__ import annotations

import torch
from torch import nn

from nlpengine.torch.bart_family import BartFamilyLM
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = ["MarianMTModel", "SinusoidalPositionEmbedding", "marian_positions"]


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


class SinusoidalPositionEmbedding(nn.Module):
    """Marian's fixed positions: rows of :func:`marian_positions`, a buffer left out of
    checkpoints."""

    def __init__(self, max_positions: int, dim: int):
        super().__init__()
        self.register_buffer("weight", marian_positions(max_positions, dim), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.weight[positions]


class MarianMTModel(BartFamilyLM):
    """Marian with its LM head, weight for weight transformers' class of the same name."""

    model_type = "marian"
    position_embedding = SinusoidalPositionEmbedding
    embedding_norm = False

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        if config.share_encoder_decoder_embeddings:
            return (
                "model.shared.weight",
                "model.encoder.embed_tokens.weight",
                "model.decoder.embed_tokens.weight",
            )
        return ("model.decoder.embed_tokens.weight",)
