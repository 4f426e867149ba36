"""``engine run``: a task over a file of records, results to a JSONL file."""

from __future__ import annotations

from pathlib import Path

import click

import nlpengine
from nlpengine.cli.options import (
    TASK_OPTIONS_CONTEXT,
    batch_size_option,
    compute_type_option,
    model_option,
    parse_task_options,
    records_file_options,
    resolve_task,
    task_option,
    threads_option,
)
from nlpengine.cli.progress import RecordProgress
from nlpengine.io import InputError, guess_format
from nlpengine.runner import run_job


@click.command(context_settings=TASK_OPTIONS_CONTEXT)
@task_option
@model_option
@records_file_options
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output JSONL.",
)
@batch_size_option
@threads_option
@compute_type_option
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same job.")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="A bad record stops the job, or goes to <output>.rejects.jsonl.",
)
@click.pass_context
def run(
    ctx,
    task_name,
    model_dir,
    input_path,
    output_path,
    fmt,
    text_field,
    id_field,
    batch_size,
    threads,
    resume,
    on_error,
):
    """Run a task over a file of records, writing one JSON result per record.

    Task options (see `engine tasks`) follow the command's own, e.g.
    --aggregation-strategy first for ner.

    \b
    Examples:
      engine run --task ner --input docs.jsonl --output ents.jsonl
      engine run --task ner --model ./my-ner --input news.txt --output ents.jsonl \\
          --aggregation-strategy first --on-error skip
      engine run --task classification --model ./sentiment --input reviews.csv \\
          --output labels.jsonl --text-field review --top-k 2
      engine run --task ner --input docs.jsonl --output ents.jsonl --resume
      engine run --task qa --model ./my-qa --input dev.json --output answers.jsonl \\
          --top-k 3 --doc-stride 128 --handle-impossible-answer true
    """
    spec = resolve_task(task_name)
    options = parse_task_options(spec, ctx.args, "engine run")
    try:
        fmt = fmt or guess_format(input_path, spec.input_formats)
        pipe = nlpengine.pipeline(
            spec.name, model=model_dir, threads=threads, batch_size=batch_size, **options
        )
        with RecordProgress(label=spec.name) as progress:
            stats = run_job(
                pipe,
                input_path,
                fmt,
                output_path,
                text_field=text_field,
                id_field=id_field,
                batch_size=batch_size,
                resume=resume,
                on_error=on_error,
                on_progress=progress.advance,
            )
    except (InputError, nlpengine.ModelError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    rate = (stats.records - stats.resumed_from) / max(stats.seconds, 1e-9)
    resumed = f" (resumed after {stats.resumed_from})" if stats.resumed_from else ""
    rejects = (
        f", {stats.rejected} rejected to {output_path}.rejects.jsonl" if stats.rejected else ""
    )
    click.echo(
        f"{spec.name}: {stats.records} records{resumed} -> {output_path}{rejects} "
        f"in {stats.seconds:.1f} s ({rate:.1f} records/s)",
        err=True,
    )
