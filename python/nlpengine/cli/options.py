"""Options shared by several commands, and task-specific options parsed per task."""

from __future__ import annotations

import os
from pathlib import Path

import click

import nlpengine
from nlpengine.io import FORMATS
from nlpengine.plugins import UnknownTaskError, get_registry
from nlpengine.runtime import COMPUTE_TYPE_VARIABLE, COMPUTE_TYPES
from nlpengine.tasks import TaskSpec

task_option = click.option(
    "--task",
    "task_name",
    required=True,
    envvar="NLPENGINE_TASK",
    help="Task name (see `engine tasks`).",
)
model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="NLPENGINE_MODEL",
    help="Model directory in Hugging Face layout [default: the task's].",
)


def records_file_options(command):
    """``--input``, ``--format``, ``--text-field`` and ``--id-field``: a file of task
    records, as ``engine run`` and ``engine bench`` read it."""
    options = [
        click.option(
            "--input",
            "input_path",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Input records.",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default=None,
            help="Input format [default: from the extension; .json is SQuAD for qa, else JSONL].",
        ),
        click.option(
            "--text-field",
            default="text",
            show_default=True,
            help="Field holding the text (jsonl, csv, tsv).",
        ),
        click.option(
            "--id-field",
            default="id",
            show_default=True,
            help="Field holding the record id; records without it get their line number.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


batch_size_option = click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="NLPENGINE_BATCH_SIZE",
    help="Records per runtime batch.",
)
threads_option = click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    envvar="NLPENGINE_THREADS",
    help="Runtime threads [default: all cores].",
)


def _set_compute_type(ctx, param, value):
    # Every model the command loads (through any task plugin) reads it from there.
    if value is not None:
        os.environ[COMPUTE_TYPE_VARIABLE] = value
    check_runtime_settings(value)
    return value


def check_runtime_settings(compute_type: str | None) -> None:
    """The runtime's environment settings that this command's models will read
    (NLPENGINE_GEMM_LIBRARY, and NLPENGINE_INT8_ARITHMETIC for int8), checked before any
    work: a bad value is a usage error naming the variable, not a traceback from the
    first model load."""
    try:
        nlpengine.gemm_library()
        if compute_type == "int8":
            nlpengine.int8_arithmetic()
    except RuntimeError as e:
        raise click.UsageError(str(e)) from e


compute_type_option = click.option(
    "--compute-type",
    type=click.Choice(COMPUTE_TYPES),
    default=None,
    envvar=COMPUTE_TYPE_VARIABLE,
    expose_value=False,
    callback=_set_compute_type,
    help="Arithmetic of the runtime's Linear layers: float32 (exact), or the faster "
    "int8, bf16, or int8-mixed (the accurate integer mode: int8 with the value and "
    "feed-forward output products in bf16 where the CPU multiplies bf16, 16-bit "
    "integer products elsewhere) [default: float32].",
)

# Lets a command accept the options of whichever task --task names.
TASK_OPTIONS_CONTEXT = {"ignore_unknown_options": True, "allow_extra_args": True}


def resolve_task(name: str) -> TaskSpec:
    try:
        return get_registry().task(name)
    except UnknownTaskError as e:
        raise click.ClickException(f"{e}. Hint: `engine tasks` lists what is installed.") from e


def parse_task_options(spec: TaskSpec, args: list[str], command: str) -> dict:
    """Parses the leftover command-line arguments against the task's own options."""
    params = [
        click.Option(
            [o.flag],
            type=o.type,
            default=o.default,
            help=o.help,
            multiple=o.multiple,
            show_default=True,
        )
        for o in spec.options
    ]
    parser = click.Command(f"{command} --task {spec.name}", params=params)
    try:
        ctx = parser.make_context(parser.name, list(args), resilient_parsing=False)
    except click.UsageError as e:
        known = ", ".join(o.flag for o in spec.options) or "none"
        raise click.UsageError(
            f"{e.format_message()} (options of task '{spec.name}': {known})"
        ) from None
    return {o.name: ctx.params[o.name] for o in spec.options}
