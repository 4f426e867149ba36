"""Training features for ``engine train --task summarization``: JSONL records
``{"text", "summary"}`` to source ids and target labels for teacher forcing.

The source is tokenized as at inference (config.json's prefix, e.g. T5's ``"summarize: "``,
then the text) and cut to ``--max-length`` tokens; the summary is tokenized with the same
tokenizer (its special tokens included: BART's ``<s> ... </s>``, T5's ``... </s>``, as
transformers' ``text_target`` gives them) and cut to ``--max-length`` too. The trainer pads
labels with -100; the model shifts them right behind decoder_start_token_id.
"""

from __future__ import annotations

import json
from pathlib import Path

from nlpengine.io import InputError, read_records


def read_examples(path: Path) -> list[dict]:
    examples = []
    for item in read_records(Path(path), "jsonl"):
        if item.error:
            raise InputError(f"{path}:{item.line}: {item.error}")
        record = item.record
        for key in ("text", "summary"):
            if record.get(key) is None:
                raise InputError(f"{path}:{item.line}: missing field '{key}'")
            if not isinstance(record[key], str):
                raise InputError(
                    f"{path}:{item.line}: field '{key}' must be a string, "
                    f"got {type(record[key]).__name__}"
                )
        examples.append({"text": record["text"], "summary": record["summary"], "line": item.line})
    if not examples:
        raise InputError(f"{path}: no records")
    return examples


def label_list(examples: list[dict]) -> list[str]:
    return []  # generated text has no label set


def featurize_options(base_dir: Path) -> dict:
    """The source prefix of the base model's config.json (what the pipeline puts first)."""
    try:
        config = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"prefix": ""}
    params = (config.get("task_specific_params") or {}).get("summarization") or {}
    return {"prefix": config.get("prefix") or params.get("prefix") or ""}


def featurize(
    examples: list[dict], tokenizer, label2id: dict, max_length: int, prefix: str = ""
) -> list[dict]:
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    sources = tokenizer.encode_batch([prefix + e["text"] for e in examples])
    targets = tokenizer.encode_batch([e["summary"] for e in examples])
    features = []
    for source, target in zip(sources, targets, strict=True):
        features.append(
            {
                "input_ids": source.ids,
                "attention_mask": source.attention_mask,
                "labels": target.ids,
            }
        )
    return features


def load_model(base_dir: Path, labels: list[str], problem_type: str | None):
    from nlpengine.torch import load_seq2seq

    return load_seq2seq(base_dir)
