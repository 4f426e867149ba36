"""Registers the built-in ``ner`` task (entry point ``ner``)."""

from __future__ import annotations

from pathlib import Path

import click
from nlpengine.hookspecs import hookimpl
from nlpengine.io import InputError
from nlpengine.tasks import TaskOption, TaskSpec, TrainingSpec, packaged_model, record_text

STRATEGIES = ("none", "simple", "first", "average", "max")
EVAL_CHUNK = 256


def _create_pipeline(
    model_dir, *, threads, batch_size, aggregation_strategy, ignore_labels, stride
):
    from nlpengine_ner.pipeline import NerPipeline

    return NerPipeline(
        model_dir,
        aggregation_strategy=aggregation_strategy,
        ignore_labels=tuple(ignore_labels),
        stride=stride,
        batch_size=batch_size,
        threads=threads,
    )


#: A record's text field is the pipeline input.
to_input = record_text


def to_output(record_id, entities: list[dict]) -> dict:
    return {"id": record_id, "entities": entities}


def evaluate(pipe, data_path: Path, options: dict) -> dict:
    """Entity-level precision, recall and F1 (seqeval; micro and per type) on a CoNLL
    file: predicted entities are mapped back onto the file's tokens as BIO tags."""
    from nlpengine.io import read_records

    from nlpengine_ner import entities_to_tags, ner_metrics
    from nlpengine_ner.metrics import TagError

    gold, pred, lines = [], [], []
    chunk: list = []

    def flush() -> None:
        entities = pipe.run_inputs([record["text"] for record in chunk])
        for record, found in zip(chunk, entities, strict=True):
            gold.append(record["tags"])
            pred.append(entities_to_tags(found, record["token_spans"]))
        chunk.clear()

    for item in read_records(data_path, "conll"):
        if item.error:
            raise InputError(f"{data_path}:{item.line}: {item.error}")
        chunk.append(item.record)
        lines.append(item.line)
        if len(chunk) >= EVAL_CHUNK:
            flush()
    if chunk:
        flush()
    try:
        metrics = ner_metrics(gold, pred)
    except TagError as e:
        if e.side != "gold":
            raise
        raise InputError(
            f"{data_path}:{lines[e.sentence]}: token {e.token + 1} of the sentence: {e.detail}"
        ) from e
    metrics["sentences"] = len(gold)
    metrics["data"] = str(data_path)
    return metrics


def _training() -> TrainingSpec:
    from nlpengine_ner import training

    return TrainingSpec(
        read_examples=training.read_examples,
        label_list=training.label_list,
        featurize=training.featurize,
        metric="f1",
    )


def default_model() -> Path:
    """The built-in model: a LoRA adapter and head over the pretrained all-MiniLM-L6-v2
    (trained by scripts/train_default_models.py)."""
    return packaged_model(__file__)


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name="ner",
            description="Named entities with character offsets (token classification).",
            head="token_classification",
            create_pipeline=_create_pipeline,
            to_input=to_input,
            to_output=to_output,
            evaluate=evaluate,
            training=_training(),
            default_model=default_model,
            token_type_schemes=("segments", "casing"),
            options=(
                TaskOption(
                    "aggregation_strategy",
                    click.Choice(STRATEGIES),
                    "simple",
                    "How sub-word predictions become entities (as transformers).",
                ),
                TaskOption(
                    "ignore_labels",
                    str,
                    ("O",),
                    "Labels never reported (repeatable).",
                    multiple=True,
                ),
                TaskOption(
                    "stride",
                    click.IntRange(min=0),
                    None,
                    "Tokens shared by overlapping windows of long texts "
                    "[default: a quarter of a window: the maximum length less special tokens].",
                ),
            ),
        )
    )
