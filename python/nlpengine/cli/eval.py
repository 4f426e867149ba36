"""``engine eval``: score a model on gold data with the task's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import click

import nlpengine
from nlpengine.cli.options import (
    TASK_OPTIONS_CONTEXT,
    batch_size_option,
    compute_type_option,
    model_option,
    parse_task_options,
    resolve_task,
    task_option,
    threads_option,
)
from nlpengine.io import InputError


@click.command(name="eval", context_settings=TASK_OPTIONS_CONTEXT)
@task_option
@model_option
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Gold data in a format the task reads (ner: CoNLL; classification: JSONL; "
    "qa: SQuAD JSON).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the metrics as JSON to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@batch_size_option
@threads_option
@compute_type_option
@click.pass_context
def eval_command(ctx, task_name, model_dir, data_path, output_path, as_json, batch_size, threads):
    """Score a model on gold data with the task's metrics.

    \b
    Examples:
      engine eval --task ner --model ./my-ner --data test.conll
      engine eval --task classification --model ./sentiment --data test.jsonl --output m.json
      engine eval --task qa --model ./my-qa --data dev-v2.0.json --handle-impossible-answer true
    """
    spec = resolve_task(task_name)
    if spec.evaluate is None:
        raise click.ClickException(f"task '{spec.name}' has no metrics to evaluate")
    options = parse_task_options(spec, ctx.args, "engine eval")
    try:
        pipe = nlpengine.pipeline(
            spec.name, model=model_dir, threads=threads, batch_size=batch_size, **options
        )
        metrics = spec.evaluate(pipe, data_path, options)
    except (InputError, nlpengine.ModelError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if output_path:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        output_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        click.echo(format_metrics(metrics))


def format_metrics(metrics: dict, indent: str = "") -> str:
    """Numbers as a readable nested list: floats with 4 decimals."""
    lines = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(format_metrics(value, indent + "  "))
        elif isinstance(value, float):
            lines.append(f"{indent}{key}: {value:.4f}")
        else:
            lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines)
