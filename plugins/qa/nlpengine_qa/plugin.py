"""Registers the built-in ``qa`` task (entry point ``qa``): extractive question answering."""

from __future__ import annotations

from pathlib import Path

import click
from nlpengine.hookspecs import hookimpl
from nlpengine.tasks import RecordError, TaskOption, TaskSpec, TrainingSpec, record_text

EVAL_CHUNK = 256


def _create_pipeline(model_dir, *, threads, batch_size, **options):
    from nlpengine_qa.pipeline import QaPipeline

    return QaPipeline(model_dir, batch_size=batch_size, threads=threads, **options)


def to_input(record: dict, text_field: str) -> tuple[str, str]:
    """The record's ``question`` and ``context`` (``text_field`` names the context when
    the record has no ``context`` field)."""
    if not isinstance(record, dict):
        raise RecordError("expected a record with 'question' and 'context' fields")
    context_field = "context" if "context" in record or text_field not in record else text_field
    return record_text(record, "question"), record_text(record, context_field)


def to_output(record_id, answers: list[dict]) -> dict:
    return {"id": record_id, "answers": answers}


def evaluate(pipe, data_path: Path, options: dict) -> dict:
    """SQuAD exact match and F1 (percent; HasAns/NoAns splits for SQuAD 2.0 data) of the
    best answer of each question (no answer: the empty string) on a SQuAD file or JSONL
    records with ``answers``."""
    from nlpengine_qa.metrics import squad_metrics
    from nlpengine_qa.training import read_gold

    predictions: list[str] = []
    references: list[list[str]] = []
    chunk: list[dict] = []

    def flush() -> None:
        results = pipe.run_inputs([(r["question"], r["context"]) for r in chunk])
        for record, answers in zip(chunk, results, strict=True):
            predictions.append(answers[0]["text"] if answers else "")
            references.append([a["text"] for a in record["answers"]])
        chunk.clear()

    for _, record in read_gold(Path(data_path)):
        chunk.append(record)
        if len(chunk) >= EVAL_CHUNK:
            flush()
    if chunk:
        flush()
    metrics = squad_metrics(predictions, references)
    metrics["questions"] = len(predictions)
    metrics["data"] = str(data_path)
    return metrics


def _training() -> TrainingSpec:
    from nlpengine_qa import training

    return TrainingSpec(
        read_examples=training.read_examples,
        label_list=training.label_list,
        featurize=training.featurize,
        loss=training.span_loss,
        metric="f1",
        supports_lora=False,
    )


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name="qa",
            description="Extractive question answering: answer spans in a context.",
            head="question_answering",
            create_pipeline=_create_pipeline,
            to_input=to_input,
            to_output=to_output,
            evaluate=evaluate,
            training=_training(),
            input_formats=("squad", "jsonl", "csv", "tsv"),
            options=(
                TaskOption("top_k", click.IntRange(min=1), 1, "Answers per question."),
                TaskOption(
                    "doc_stride",
                    click.IntRange(min=0),
                    None,
                    "Context tokens shared by the windows of a long context "
                    "[default: min(max_seq_len // 2, 128)].",
                ),
                TaskOption(
                    "max_answer_len", click.IntRange(min=1), 15, "Longest answer in tokens."
                ),
                TaskOption("max_question_len", click.IntRange(min=1), 64, "Question tokens kept."),
                TaskOption(
                    "max_seq_len",
                    click.IntRange(min=1),
                    None,
                    "Tokens per window, special tokens included "
                    "[default: min(384, the model's maximum)].",
                ),
                TaskOption(
                    "handle_impossible_answer",
                    click.BOOL,
                    False,
                    "Offer the empty answer (start = end = 0) when the model prefers it.",
                ),
            ),
        )
    )
