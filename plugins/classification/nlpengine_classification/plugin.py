"""Registers the built-in ``classification`` task (entry point ``classification``)."""

from __future__ import annotations

from pathlib import Path

import click
from nlpengine.hookspecs import hookimpl
from nlpengine.io import InputError
from nlpengine.tasks import (
    RecordError,
    TaskOption,
    TaskSpec,
    TrainingSpec,
    packaged_model,
    record_text,
)

PAIR_FIELD = "text_pair"


def _create_pipeline(model_dir, *, threads, batch_size, top_k, function_to_apply):
    from nlpengine_classification.pipeline import ClassificationPipeline

    return ClassificationPipeline(
        model_dir,
        top_k=None if top_k == 0 else top_k,
        function_to_apply=function_to_apply,
        batch_size=batch_size,
        threads=threads,
    )


def to_input(record: dict, text_field: str):
    """A text, or a (text, text_pair) tuple when the record has a ``text_pair`` field."""
    text = record_text(record, text_field)
    if record.get(PAIR_FIELD) is not None:
        return (text, record_text(record, PAIR_FIELD))
    return text


def to_output(record_id, labels: list[dict]) -> dict:
    return {"id": record_id, "labels": labels}


def evaluate(pipe, data_path: Path, options: dict) -> dict:
    """Accuracy, macro/micro F1 and a per-class report on JSONL gold data:
    ``{"text", "text_pair"?, "label"}`` (or ``"labels": [...]`` for multi-label models)."""
    from nlpengine.io import read_records

    from nlpengine_classification.metrics import classification_metrics

    runner = pipe.runner
    multi_label = runner.model.hf_config.get("problem_type") == "multi_label_classification"
    if multi_label:
        runner.top_k = None
    labels = list(runner.model.id2label.values())
    inputs, gold = [], []
    for item in read_records(data_path, "jsonl"):
        if item.error:
            raise InputError(f"{data_path}:{item.line}: {item.error}")
        try:
            inputs.append(to_input(item.record, "text"))
            key = "labels" if multi_label else "label"
            if key not in item.record:
                raise RecordError(f"missing gold field '{key}'")
            gold.append(_gold_labels(item.record[key], key, labels, multi_label))
        except RecordError as e:
            raise InputError(f"{data_path}:{item.line}: {e}") from e
    predictions = runner(inputs) if inputs else []
    if multi_label:
        pred = [[r["label"] for r in result if r["score"] >= 0.5] for result in predictions]
    else:
        pred = [result[0]["label"] for result in predictions]
    metrics = classification_metrics(gold, pred, labels=labels, multi_label=multi_label)
    metrics["data"] = str(data_path)
    return metrics


def _gold_labels(value, key: str, labels: list[str], multi_label: bool):
    """A record's gold label (a list of them for a multi-label model), which must be among
    the model's labels: the metrics would otherwise fail naming no record."""
    values = value if multi_label else [value]
    if multi_label and not isinstance(value, list):
        raise RecordError(
            f"gold field '{key}' must be a list of labels, got {type(value).__name__}"
        )
    for label in values:
        if label not in labels:
            raise RecordError(
                f"gold label {label!r} is not one of the model's labels ({', '.join(labels)})"
            )
    return value


def _training() -> TrainingSpec:
    from nlpengine_classification import training

    return TrainingSpec(
        read_examples=training.read_examples,
        label_list=training.label_list,
        featurize=training.featurize,
        metric="accuracy",
        problem_type=training.problem_type,
    )


def default_model() -> Path:
    """The built-in model: a LoRA adapter and head over the pretrained all-MiniLM-L6-v2
    (trained by scripts/train_default_models.py)."""
    return packaged_model(__file__)


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name="classification",
            description="Text (and text-pair) classification, single- or multi-label.",
            head="sequence_classification",
            create_pipeline=_create_pipeline,
            to_input=to_input,
            to_output=to_output,
            evaluate=evaluate,
            training=_training(),
            default_model=default_model,
            options=(
                TaskOption(
                    "top_k", click.IntRange(min=0), 1, "Labels per record, best first (0: all)."
                ),
                TaskOption(
                    "function_to_apply",
                    click.Choice(["softmax", "sigmoid", "none"]),
                    None,
                    "Score function [default: from the model's problem_type].",
                ),
            ),
            input_formats=("jsonl", "csv", "tsv", "text"),
        )
    )


__all__ = ["evaluate", "register_tasks", "to_input", "to_output"]
