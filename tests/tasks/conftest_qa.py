"""Builders for the QA tests: tiny seeded ``*ForQuestionAnswering`` models saved in HF layout
with a real tokenizer (the NER tests' WordPiece / byte-level BPE tokenizers), and synthetic
question/context texts written here.

Imported by the QA test modules (``from conftest_qa import ...``); not a pytest conftest.
"""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import _randomize_parameters, tiny_config
from conftest_ner import tokenizer_for

#: Our own contexts: short, long enough for several windows, accents, digits, other scripts.
CONTEXTS = [
    "John Smith visited New York and Paris in 2019. He works at Acme Bank.",
    "Mary Lee works at Acme Bank, Berlin! The bank was founded in 1875 by Anna Lee.",
    "Émile met Zoë at the café in São Paulo yesterday, then they walked to the river.",
    " ".join(
        f"In {1900 + i} the city of Springfield built bridge number {i} over the river, "
        f"and the mayor John Smith{'s' * (i % 3)} said it was new."
        for i in range(12)
    ),
    "東京 and Москва are cities; Straße in München is long. Rivers flow to the sea.",
    "",
]
QUESTIONS = [
    "Where did John Smith go?",
    "Who founded the bank?",
    "Where did they meet?",
    "When was bridge number 7 built?",
    "Which cities are named?",
    "What is here?",
]


def save_qa_model(directory, arch: str, *, seed: int = 0, max_positions: int = 128) -> Path:
    """A tiny seeded question-answering model of ``arch`` and its tokenizer in
    ``directory`` (created); the span head is rescaled so that start/end probabilities
    are confident but spread over several tokens."""
    from transformers import AutoModelForQuestionAnswering, PreTrainedTokenizerFast

    directory = Path(directory)
    tok, special = tokenizer_for(arch)
    pad_id = tok.token_to_id(special["pad_token"])
    overrides = dict(vocab_size=tok.get_vocab_size(), pad_token_id=pad_id)
    if arch in ("roberta", "xlm-roberta"):
        overrides["max_position_embeddings"] = max_positions + pad_id + 1
        overrides["bos_token_id"] = tok.token_to_id("<s>")
        overrides["eos_token_id"] = tok.token_to_id("</s>")
    else:
        overrides["max_position_embeddings"] = max_positions
    cfg = tiny_config(arch, **overrides)
    torch.manual_seed(seed)
    model = AutoModelForQuestionAnswering.from_config(cfg)
    _randomize_parameters(model, seed)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(0.5)
    model.eval()
    model.save_pretrained(directory)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(directory)
    return directory
