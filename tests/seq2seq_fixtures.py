"""Tiny summarization models and data for the task and training tests.

A word-level tokenizer (the ``tokenizers`` library) over a synthetic vocabulary, with
BART's special tokens and template (``<s> $A </s>``) or T5's (``$A </s>``), saved as
tokenizer.json beside a seeded tiny transformers model (built by ``seq2seq_models``) whose
vocabulary is the tokenizer's. The data are template "articles" whose summary is their
first sentence (no shared data is copied).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from seq2seq_models import SEQ2SEQ_CONFIGS, save_seq2seq

PEOPLE = ["alice", "kofi", "li", "sara", "tom", "ana", "omar", "june"]
PLACES = ["lisbon", "nairobi", "oslo", "quito", "hanoi", "dublin", "lima", "riga"]
ACTIONS = ["moved to", "flew to", "visited", "left"]
FILLER = [
    "the weather was mild and the food was good .",
    "friends said the trip was long but pleasant .",
    "the city has a large old harbour and many parks .",
    "it rained on most days of the week .",
    "the museum was closed for repairs .",
]
WORDS = sorted(
    {w for text in PEOPLE + PLACES + ACTIONS + FILLER for w in text.split()}
    | {"in", "last", "year", "she", "he", "and", "then", "."}
)
SPECIAL = {
    "bart": ["<s>", "<pad>", "</s>", "<unk>"],
    "t5": ["<pad>", "</s>", "<unk>"],
}


def article(rng: random.Random) -> tuple[str, str]:
    """(text, summary): the summary is the text's first sentence."""
    first = f"{rng.choice(PEOPLE)} {rng.choice(ACTIONS)} {rng.choice(PLACES)} last year ."
    rest = " ".join(rng.sample(FILLER, 2))
    return f"{first} {rest}", first


def summary_records(count: int, seed: int, with_ids: bool = True) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        text, summary = article(rng)
        record = {"text": text, "summary": summary}
        if with_ids:
            record = {"id": f"a{seed}-{i}", **record}
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def make_tokenizer(kind: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    specials = SPECIAL[kind]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(specials)
    if kind == "bart":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", 1)]
        )
    return tokenizer


#: The tiny runtime parity models, with the tokenizer's vocabulary and transformers' own
#: initialisation: bart with a 2-layer decoder, FFN 64 and unscaled embeddings, t5 gated-gelu.
SUMMARIZER_CONFIGS = {
    "bart": dict(
        SEQ2SEQ_CONFIGS["bart"],
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        scale_embedding=False,
    ),
    "t5": dict(
        SEQ2SEQ_CONFIGS["t5"], relative_attention_max_distance=16, feed_forward_proj="gated-gelu"
    ),
}


def save_tiny_summarizer(path: Path, kind: str = "bart", seed: int = 0, **overrides) -> Path:
    """A tiny seeded ``bart`` or ``t5`` summarizer directory (config.json,
    model.safetensors, generation_config.json, tokenizer.json)."""
    tokenizer = make_tokenizer(kind)
    config = dict(SUMMARIZER_CONFIGS[kind], vocab_size=tokenizer.get_vocab_size(), **overrides)
    path = Path(path)
    save_seq2seq(path, config, seed, std=None)
    tokenizer.save(str(path / "tokenizer.json"))
    return path
