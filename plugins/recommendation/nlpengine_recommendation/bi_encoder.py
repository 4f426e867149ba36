"""The bi-encoder trained by ``engine train --task recommendation``: an encoder with
sentence-transformers pooling, users as weighted means of item vectors, InfoNCE logits."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine_recommendation.pooling import PoolingConfig

TEMPERATURE = 0.05
_MASKED = -1e4  # a masked-out logit (cosine / temperature stays within +-20)


class BiEncoder(nn.Module):
    def __init__(self, encoder, pooling: PoolingConfig, temperature: float = TEMPERATURE):
        super().__init__()
        self.encoder = encoder  # a bare nlpengine.torch.EncoderModel
        self.pooling = pooling
        self.temperature = temperature

    @property
    def config(self):
        return self.encoder.config

    def embed(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Pooled, L2-normalised item vectors (batch, hidden)."""
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        keep = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling.mode == "cls":
            pooled = hidden[:, 0]
        elif self.pooling.mode == "max":
            pooled = hidden.masked_fill(keep == 0, -1e9).max(dim=1).values
        else:
            pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def forward(
        self,
        input_ids,
        attention_mask,
        token_type_ids=None,
        user_weights=None,
        positive=None,
        negative_mask=None,
        positive_log_q=None,
    ) -> torch.Tensor:
        """(users, users) logits: user i against the batch's positives (less their log
        sampling probability ``positive_log_q``, when given)."""
        items = self.embed(input_ids, attention_mask, token_type_ids)
        users = F.normalize(user_weights.to(items.dtype) @ items, dim=-1)
        logits = users @ items[positive].T / self.temperature
        if positive_log_q is not None:
            logits = logits - positive_log_q.to(logits.dtype)[None, :]
        if negative_mask is not None:
            logits = logits.masked_fill(negative_mask, _MASKED)
        return logits

    def save_pretrained(self, out_dir) -> None:
        """The encoder (config.json, model.safetensors) and the sentence-transformers
        modules: the base's pooling and a Normalize module (training used cosine)."""
        out_dir = Path(out_dir)
        self.encoder.save_pretrained(out_dir)
        config = PoolingConfig(self.pooling.mode, True, self.pooling.max_seq_length)
        config.to_files(out_dir, self.encoder.config.hidden_size)
