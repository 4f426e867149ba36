"""``engine train``: fine-tune a model for a task (needs the ``train`` extra: torch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from click.core import ParameterSource

from nlpengine.cli.options import (
    TASK_OPTIONS_CONTEXT,
    parse_task_options,
    resolve_task,
    task_option,
)
from nlpengine.io import InputError
from nlpengine.tokenization import TOKEN_TYPE_SCHEMES
from nlpengine.training.config import LoraSettings, TrainConfig

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

# (option name, TrainConfig field, click type, help)
_TRAINING_OPTIONS = [
    ("--epochs", "epochs", click.IntRange(min=1), "Passes over the training data."),
    (
        "--batch-size",
        "batch_size",
        click.IntRange(min=1),
        "Global batch size (split across torchrun processes).",
    ),
    ("--learning-rate", "learning_rate", click.FloatRange(min=0), "Peak AdamW learning rate."),
    ("--weight-decay", "weight_decay", click.FloatRange(min=0), "AdamW weight decay."),
    ("--warmup-ratio", "warmup_ratio", click.FloatRange(0, 1), "Share of steps warming up."),
    ("--max-grad-norm", "max_grad_norm", click.FloatRange(min=0), "Gradient clipping norm."),
    ("--max-length", "max_length", click.IntRange(min=8), "Tokens per training example."),
    ("--seed", "seed", int, "Seed for initialisation, shuffling and dropout."),
    ("--threads", "threads", click.IntRange(min=1), "torch and runtime threads."),
    ("--limit-train", "limit_train", click.IntRange(min=1), "Use the first N examples."),
    (
        "--token-types",
        "token_types",
        click.Choice(TOKEN_TYPE_SCHEMES),
        "What token type ids carry: the tokenizer's segments, or each word's capitalisation "
        "(casing: lets a model over a lower-casing tokenizer see case; the token-type "
        "embeddings train with the head and the model's pipelines compute the same types).",
    ),
]


def _training_options(function):
    defaults = TrainConfig()
    for flag, field, kind, help_text in reversed(_TRAINING_OPTIONS):
        function = click.option(
            flag,
            field,
            type=kind,
            default=getattr(defaults, field),
            show_default=True,
            help=help_text,
        )(function)
    return function


@click.command(context_settings=TASK_OPTIONS_CONTEXT)
@task_option
@click.option(
    "--base",
    "base_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model directory to start from (Hugging Face layout).",
)
@click.option("--train", "train_path", required=True, type=EXISTING_FILE, help="Training data.")
@click.option(
    "--dev",
    "dev_path",
    required=True,
    type=EXISTING_FILE,
    help="Development data, scored with the task's metrics after every epoch.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output model directory (the best epoch).",
)
@_training_options
@click.option(
    "--lora",
    default=None,
    help="Train low-rank adapters plus the head, e.g. r=8,alpha=16,targets=query,value.",
)
@click.option(
    "--config",
    "config_path",
    type=EXISTING_FILE,
    default=None,
    help="Training options from a JSON or TOML file (command-line options win).",
)
@click.option("--resume", is_flag=True, help="Continue from the last epoch checkpoint in --out.")
@click.pass_context
def train(
    ctx, task_name, base_dir, train_path, dev_path, out_dir, lora, config_path, resume, **options
):
    """Fine-tune a model for a task; write the best epoch as a model directory.

    Each epoch is scored on --dev with the task's metrics (in the C++ runtime); the best
    is written to --out, which the runtime and transformers both load (with --lora, a PEFT
    adapter next to a pointer to the base). Multi-process: torchrun --nproc-per-node 2
    $(which engine) train ...

    Task options (see `engine tasks`) follow the command's own, e.g. --items F for
    recommendation; they reach the task's data reading and the per-epoch scoring.

    \b
    Examples:
      engine train --task ner --base ./all-MiniLM-L6-v2 --train train.conll --dev dev.conll \\
          --out ./my-ner --epochs 3 --lora r=8,alpha=16,targets=query,value
      engine train --task classification --base ./base --train train.jsonl --dev dev.jsonl \\
          --out ./sentiment --config train.toml
      engine train --task summarization --base ./bart-base --train train.jsonl \\
          --dev dev.jsonl --out ./summarizer --max-length 512
      engine train --task recommendation --base ./all-MiniLM-L6-v2 --train train.jsonl \
          --dev dev.jsonl --out ./recommender --items items.jsonl --interactions history.jsonl
    """
    try:
        from nlpengine.training.trainer import TrainingError
        from nlpengine.training.trainer import train as run_training
    except ImportError as e:
        raise click.ClickException(
            f"engine train needs torch: pip install 'nlpengine[train]' ({e})"
        ) from e
    spec = resolve_task(task_name)
    try:
        settings = TrainConfig.from_file(config_path) if config_path else {}
        for name, value in options.items():
            if name not in settings or ctx.get_parameter_source(name) in (
                ParameterSource.COMMANDLINE,
                ParameterSource.ENVIRONMENT,
            ):
                settings[name] = value
        if lora is not None:
            settings["lora"] = LoraSettings.parse(lora)
        given = _given_task_options(spec, ctx.args)
        if given:
            settings["task_options"] = {**settings.get("task_options", {}), **given}
        config = TrainConfig(**settings)
        summary = run_training(spec, base_dir, train_path, dev_path, out_dir, config, resume=resume)
    except (InputError, TrainingError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps({"best": summary["best"], "out": summary["out"]}), err=True)


def _given_task_options(spec, args: list[str]) -> dict:
    """The task options given on the command line (those left at their default are not),
    with paths as strings so that they go into training_log.json."""
    values = parse_task_options(spec, args, "engine train")
    defaults = spec.option_defaults()
    return {
        name: os.fspath(value) if isinstance(value, os.PathLike) else value
        for name, value in values.items()
        if value != defaults[name]
    }
