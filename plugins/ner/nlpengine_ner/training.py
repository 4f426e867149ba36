"""Training features for ``engine train --task ner``: CoNLL sentences to token labels.

The text of each sentence is tokenized exactly as at inference (the raw ``# text =`` line
when the file has one, else the tokens joined by spaces). Each word's tag goes to its first
sub-word token and its continuation pieces get the matching inside tag (``I-X`` for a
``B-X`` or ``I-X`` word, ``O`` for ``O``; transformers' ``label_all_tokens``), so that every
aggregation strategy, ``simple`` included, sees trained predictions on every piece. Special
tokens and tokens outside any word are ignored by the loss (-100).

With ``token_types="casing"`` (``engine train --token-types casing``) the token type ids
carry each word's capitalisation (:func:`nlpengine.tokenization.casing_type_ids`), as the
pipeline computes them for a model whose config.json says so.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from nlpengine.io import InputError, read_records
from nlpengine.tokenization import casing_type_ids

IGNORE = -100


def read_examples(path: Path) -> list[dict]:
    examples = []
    for item in read_records(Path(path), "conll"):
        if item.error:
            raise InputError(f"{path}:{item.line}: {item.error}")
        if item.record["tokens"]:
            examples.append({**item.record, "line": item.line})
    if not examples:
        raise InputError(f"{path}: no sentences")
    return examples


def label_list(examples: list[dict]) -> list[str]:
    """ "O" first, then B-/I- (and other prefixes) grouped by entity type."""
    tags = {tag for example in examples for tag in example["tags"]}
    # Continuation pieces of a B-X word are labelled I-X, so every type needs both.
    tags |= {"I-" + t[2:] for t in tags if t.startswith("B-")}
    others = sorted(tags - {"O"}, key=lambda t: (t.split("-", 1)[-1], t))
    return ["O", *others]


def featurize(
    examples: list[dict],
    tokenizer,
    label2id: dict[str, int],
    max_length: int,
    token_types: str = "segments",
):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    encodings = tokenizer.encode_batch([example["text"] for example in examples])
    features = []
    for example, encoding in zip(examples, encodings, strict=True):
        spans = example["token_spans"]
        starts = [start for start, _ in spans]
        labels = []
        for (start, end), special in zip(
            encoding.offsets, encoding.special_tokens_mask, strict=True
        ):
            word = bisect.bisect_right(starts, start) - 1
            inside = not special and end > start and word >= 0 and start < spans[word][1]
            if not inside:
                labels.append(IGNORE)
                continue
            tag = example["tags"][word]
            if start != spans[word][0] and tag != "O":
                tag = "I-" + tag.split("-", 1)[-1]
            if tag not in label2id:
                raise InputError(f"line {example['line']}: tag '{tag}' is not among the labels")
            labels.append(label2id[tag])
        features.append(
            {
                "input_ids": encoding.ids,
                "attention_mask": encoding.attention_mask,
                "token_type_ids": (
                    casing_type_ids(example["text"], encoding)
                    if token_types == "casing"
                    else encoding.type_ids
                ),
                "labels": labels,
            }
        )
    return features
