"""Builders for the NER tests: tokenizers made here with the ``tokenizers`` library and tiny
seeded ``*ForTokenClassification`` models saved next to them in HF layout, so the nlpengine
pipeline and transformers' pipeline load the very same directory.

Imported by the NER test modules (``from conftest_ner import ...``); not a pytest conftest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import _randomize_parameters, tiny_config

BIO_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

#: Whole words and continuation pieces of the WordPiece vocabularies; every other word is
#: spelled with single characters, so most words split into several subwords.
_WORDS = (
    "the and in at of to for was is a new york paris berlin john mary smith anna lee acme "
    "bank city university river visited works lives met said from"
).split()
_PIECES = "##ing ##son ##ton ##berg ##er ##ed ##s ##ville ##land ##ia ##an".split()
_PUNCT = list(".,;:!?'\"()-/&@#%$€")

#: Sentences the BPE tokenizer is trained on (our own words, no external corpus).
_BPE_CORPUS = [
    "John Smith visited New York and Paris in 2019.",
    "Mary Lee works at Acme Bank in Berlin.",
    "The University of Springfield said on Monday that Anna met the mayor.",
    "Rivers, cities and banks: all of them were named after people.",
    "Émile and Zoë moved from Zürich to São Paulo last year!",
]


def wordpiece_tokenizer(*, lowercase: bool):
    """A BERT-style WordPiece tokenizer: BertNormalizer, BertPreTokenizer, [CLS] $A [SEP]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = "abcdefghijklmnopqrstuvwxyz"
    if not lowercase:
        letters += letters.upper() + "éèüöäçñ"
    chars = list(letters + "0123456789") + _PUNCT
    vocab = specials + chars + ["##" + c for c in letters + "0123456789"]
    vocab += _WORDS + _PIECES
    if not lowercase:
        vocab += [w.capitalize() for w in "john mary smith paris berlin acme new york".split()]
    vocab = list(dict.fromkeys(vocab))
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    special = dict(
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    return tok, special


def bytelevel_bpe_tokenizer():
    """A RoBERTa-style byte-level BPE: <s> $A </s>, add_prefix_space, trim_offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=380,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_BPE_CORPUS * 4, trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")),
        ("<s>", tok.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=True,
    )
    special = dict(
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    return tok, special


def tokenizer_for(arch: str):
    if arch in ("roberta", "xlm-roberta"):
        return bytelevel_bpe_tokenizer()
    # ELECTRA gets a cased vocabulary with accented letters; the others are uncased.
    return wordpiece_tokenizer(lowercase=arch != "electra")


def save_ner_model(
    directory,
    arch: str,
    *,
    labels=BIO_LABELS,
    seed: int = 0,
    max_positions: int = 128,
    classifier_scale: float = 2.0,
    o_bias: float = 1.0,
) -> Path:
    """A tiny seeded token-classification model of ``arch`` with ``labels`` and a real
    tokenizer in ``directory`` (created). The classifier is rescaled so every label wins on
    some tokens with confident probabilities; ``o_bias`` favours ``O`` a little so entities
    come in runs separated by outside tokens."""
    from transformers import AutoModelForTokenClassification, PreTrainedTokenizerFast

    directory = Path(directory)
    tok, special = tokenizer_for(arch)
    pad_id = tok.token_to_id(special["pad_token"])
    overrides = dict(
        vocab_size=tok.get_vocab_size(),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        pad_token_id=pad_id,
    )
    if arch in ("roberta", "xlm-roberta"):
        # RoBERTa positions start at pad_id + 1.
        overrides["max_position_embeddings"] = max_positions + pad_id + 1
        overrides["bos_token_id"] = tok.token_to_id("<s>")
        overrides["eos_token_id"] = tok.token_to_id("</s>")
    else:
        overrides["max_position_embeddings"] = max_positions
    cfg = tiny_config(arch, **overrides)
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_config(cfg)
    _randomize_parameters(model, seed)
    model.eval()
    _calibrate_classifier(model, tok, labels, seed, classifier_scale, o_bias)
    model.eval()
    model.save_pretrained(directory)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(directory)
    return directory


def _calibrate_classifier(model, tok, labels, seed, scale, o_bias) -> None:
    """Standardise each label's logit over random token sequences (mean 0, std ``scale``).

    A random encoder maps most tokens to similar states, so one or two labels would win
    everywhere; standardising makes every label win somewhere. ``O`` gets ``o_bias`` extra.
    """
    rng = np.random.default_rng(seed)
    num_specials = 5  # both vocabularies start with their five special tokens
    ids = rng.integers(num_specials, tok.get_vocab_size(), size=(8, 24))
    ids[:, 0] = tok.token_to_id("[CLS]") if tok.token_to_id("[CLS]") is not None else 0
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids)).logits.reshape(-1, len(labels))
        mean, std = logits.mean(0), logits.std(0).clamp_min(1e-3)
        factor = scale / std
        model.classifier.weight.mul_(factor[:, None])
        model.classifier.bias.sub_(mean).mul_(factor)
        if "O" in labels:
            model.classifier.bias[labels.index("O")] += o_bias


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
