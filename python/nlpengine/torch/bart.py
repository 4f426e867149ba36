"""BART: the BART-family encoder-decoder with learned positions and a LayerNorm after the
embeddings.

Weight names are transformers' ``BartForConditionalGeneration``'s (see
:mod:`nlpengine.torch.bart_family`): ``model.shared`` is the token embedding of both stacks
and, unless the checkpoint has its own, of the LM head; ``model.{encoder,decoder}.
embed_positions`` are learned tables offset by 2 rows; ``model.{encoder,decoder}.
layernorm_embedding`` follows the embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from nlpengine.torch.bart_family import BartFamilyLM
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = ["BartForConditionalGeneration", "LearnedPositionEmbedding"]

#: BART's learned position tables have two extra leading rows (a fairseq legacy).
POSITION_OFFSET = 2


class LearnedPositionEmbedding(nn.Embedding):
    """BART's learned positions: position p is row p + 2 of the table."""

    def __init__(self, max_positions: int, dim: int):
        super().__init__(max_positions + POSITION_OFFSET, dim)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return super().forward(positions + POSITION_OFFSET)


class BartForConditionalGeneration(BartFamilyLM):
    """BART with its LM head, weight for weight transformers' class of the same name."""

    model_type = "bart"
    position_embedding = LearnedPositionEmbedding
    embedding_norm = True

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        return (
            "model.shared.weight",
            "model.encoder.embed_tokens.weight",
            "model.decoder.embed_tokens.weight",
        )
