"""Input embeddings: word + position (+ token type), LayerNorm, dropout."""

from __future__ import annotations

import torch
from torch import nn

from nlpengine.torch.config import EncoderConfig

__all__ = ["Embeddings", "position_ids_for", "sinusoidal_table"]


def position_ids_for(input_ids: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """Position ids of each token.

    BERT / DistilBERT / ELECTRA: 0, 1, 2, ...  RoBERTa family: pad tokens get
    ``pad_token_id``, others ``pad_token_id + (number of non-pad tokens so far)``.
    """
    seq = input_ids.shape[1]
    if config.roberta_positions:
        not_pad = input_ids.ne(config.pad_token_id).long()
        return torch.cumsum(not_pad, dim=1) * not_pad + config.pad_token_id
    return torch.arange(seq, device=input_ids.device).unsqueeze(0).expand_as(input_ids)


def sinusoidal_table(n_pos: int, dim: int) -> torch.Tensor:
    """DistilBERT's fixed sinusoidal position table (sin on even, cos on odd columns)."""
    pos = torch.arange(n_pos, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty(n_pos, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class Embeddings(nn.Module):
    """Weight names follow transformers: ``word_embeddings``, ``position_embeddings``,
    ``token_type_embeddings`` (absent for DistilBERT), ``LayerNorm``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        size = config.embedding_size
        pad = config.pad_token_id
        pad = pad if pad is not None and 0 <= pad < config.vocab_size else None
        self.word_embeddings = nn.Embedding(config.vocab_size, size, padding_idx=pad)
        pos_pad = pad if config.roberta_positions else None
        if pos_pad is not None and pos_pad >= config.max_position_embeddings:
            pos_pad = None
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, size, padding_idx=pos_pad
        )
        if config.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, size)
        else:
            self.token_type_embeddings = None
        self.LayerNorm = nn.LayerNorm(size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    @property
    def max_sequence_length(self) -> int:
        c = self.config
        if c.roberta_positions:
            return c.max_position_embeddings - c.pad_token_id - 1
        return c.max_position_embeddings

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        if input_ids.shape[1] > self.max_sequence_length:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds the model's maximum "
                f"{self.max_sequence_length}"
            )
        position_ids = position_ids_for(input_ids, self.config)
        x = self.word_embeddings(input_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))

    def reset_parameters(self, std: float) -> None:
        """transformers' initialisation: normal(0, std), zero padding row, LayerNorm 1/0."""
        with torch.no_grad():
            for emb in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
                if emb is None:
                    continue
                emb.weight.normal_(0.0, std)
                if emb.padding_idx is not None:
                    emb.weight[emb.padding_idx].zero_()
            if self.config.sinusoidal_pos_embds:
                self.position_embeddings.weight.copy_(
                    sinusoidal_table(*self.position_embeddings.weight.shape)
                )
            self.LayerNorm.weight.fill_(1.0)
            self.LayerNorm.bias.zero_()
