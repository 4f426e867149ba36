"""Training features for ``engine train --task classification``: JSONL records
``{"text", "text_pair"?, "label"}`` (single-label) or ``{"text", "labels": [...]}``
(multi-label)."""

from __future__ import annotations

from pathlib import Path

from nlpengine.io import InputError, read_records


def read_examples(path: Path) -> list[dict]:
    examples = []
    for item in read_records(Path(path), "jsonl"):
        if item.error:
            raise InputError(f"{path}:{item.line}: {item.error}")
        record = item.record
        if not isinstance(record.get("text"), str):
            raise InputError(f"{path}:{item.line}: missing text field 'text'")
        if "labels" in record:
            if not isinstance(record["labels"], list):
                raise InputError(f"{path}:{item.line}: 'labels' must be a list")
            gold = [str(label) for label in record["labels"]]
        elif "label" in record:
            gold = str(record["label"])
        else:
            raise InputError(f"{path}:{item.line}: missing gold field 'label' (or 'labels')")
        examples.append(
            {
                "text": record["text"],
                "text_pair": record.get("text_pair"),
                "gold": gold,
                "line": item.line,
            }
        )
    if not examples:
        raise InputError(f"{path}: no records")
    kinds = {isinstance(e["gold"], list) for e in examples}
    if len(kinds) > 1:
        raise InputError(f"{path}: mixes 'label' and 'labels' records")
    return examples


def problem_type(examples: list[dict]) -> str:
    multi = isinstance(examples[0]["gold"], list)
    return "multi_label_classification" if multi else "single_label_classification"


def label_list(examples: list[dict]) -> list[str]:
    labels = set()
    for example in examples:
        gold = example["gold"]
        labels.update(gold if isinstance(gold, list) else [gold])
    return sorted(labels)


def featurize(examples: list[dict], tokenizer, label2id: dict[str, int], max_length: int):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    features = []
    for example in examples:
        if example["text_pair"] is not None:
            encoding = tokenizer.encode(example["text"], example["text_pair"])
        else:
            encoding = tokenizer.encode(example["text"])
        gold = example["gold"]
        try:
            if isinstance(gold, list):
                label = [0.0] * len(label2id)
                for name in gold:
                    label[label2id[name]] = 1.0
            else:
                label = label2id[gold]
        except KeyError as e:
            raise InputError(f"line {example['line']}: label {e} is not among the labels") from e
        features.append(
            {
                "input_ids": encoding.ids,
                "attention_mask": encoding.attention_mask,
                "token_type_ids": encoding.type_ids,
                "labels": label,
            }
        )
    return features
