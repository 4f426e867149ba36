"""The torch encoder-decoder learns a task that needs cross-attention: reversing a
random token sequence cannot be done by a decoder that ignores its source."""

from __future__ import annotations

import torch
from nlpengine.torch import Seq2SeqConfig
from nlpengine.torch.bart import BartForConditionalGeneration


def test_tiny_bart_learns_to_reverse_its_source():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums every run
    try:
        first, last = _train_reversal()
    finally:
        torch.set_num_threads(threads)
    # Chance level is ln(20) ~ 3.0; a decoder that ignored the source would stay there.
    assert first > 2.5
    assert last < 0.05


def _train_reversal() -> tuple[float, float]:
    torch.manual_seed(0)
    config = Seq2SeqConfig.from_dict(
        dict(
            model_type="bart",
            vocab_size=24,
            d_model=64,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
            max_position_embeddings=32,
            dropout=0.0,
            attention_dropout=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            scale_embedding=True,
        )
    )
    model = BartForConditionalGeneration(config, tie_lm_head=True)
    model.reset_parameters()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=7e-4)
    first = last = None
    for _ in range(1000):
        source = torch.randint(4, 24, (32, 8))
        ids = torch.cat([torch.zeros(32, 1, dtype=torch.long), source, torch.full((32, 1), 2)], 1)
        labels = torch.cat([source.flip(1), torch.full((32, 1), 2)], 1)
        logits = model(ids, torch.ones_like(ids), labels=labels)
        loss = model.loss(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
        last = float(loss.detach())
    return first, last
