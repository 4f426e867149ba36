"""``engine bench``: how fast a task runs here, per compute type, on the user's records."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

import nlpengine
from nlpengine.benchmark import first_lines, read_inputs
from nlpengine.cli.options import (
    TASK_OPTIONS_CONTEXT,
    batch_size_option,
    check_runtime_settings,
    model_option,
    parse_task_options,
    records_file_options,
    resolve_task,
    task_option,
    threads_option,
)
from nlpengine.io import InputError, guess_format
from nlpengine.runtime import COMPUTE_TYPE_VARIABLE, COMPUTE_TYPES


def _compute_types(ctx, param, values) -> list[str]:
    chosen: list[str] = []
    for value in values or (os.environ.get(COMPUTE_TYPE_VARIABLE) or "float32",):
        for name in (v.strip() for v in value.split(",")):
            if name not in COMPUTE_TYPES:
                raise click.BadParameter(
                    f"{name!r} is not one of {', '.join(COMPUTE_TYPES)}", ctx, param
                )
            if name not in chosen:
                chosen.append(name)
    for name in chosen:
        check_runtime_settings(name)
    return chosen


@click.command(context_settings=TASK_OPTIONS_CONTEXT)
@task_option
@model_option
@records_file_options
@batch_size_option
@threads_option
@click.option(
    "--compute-type",
    "compute_types",
    multiple=True,
    callback=_compute_types,
    help="Compute type(s) to time, repeated or comma-separated, e.g. float32,int8,bf16 "
    f"[default: ${COMPUTE_TYPE_VARIABLE} or float32]. The first is the reference the "
    "others' speed and answers are compared with.",
)
@click.option(
    "--records",
    "limit",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Time the first N records the task can run.",
)
@click.option(
    "--rounds",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs per compute type, each in a fresh process, the types taking turns.",
)
@click.option(
    "--passes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Timed passes over the records per run, after an untimed first pass.",
)
@click.option(
    "--min-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="More timed passes, until they take this long in all (for small inputs).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every measurement, the settings and the machine as JSON here.",
)
@click.pass_context
def bench(
    ctx,
    task_name,
    model_dir,
    input_path,
    fmt,
    text_field,
    id_field,
    batch_size,
    threads,
    compute_types,
    limit,
    rounds,
    passes,
    min_seconds,
    output_path,
):
    """Time a task on a file of records, per compute type: records/s and words/s.

    Each run is a fresh process that loads the model, answers a first batch and a
    first pass untimed, then times passes over the records as `engine run` processes
    them (results are encoded, not written). Compute types take turns for --rounds
    rounds; the table gives medians with the range, the share of the time spent in
    the runtime (the rest is Python: reading, tokenizing, decoding answers), the load
    time, the time to the first answer, peak memory, and the share of records whose
    answer (scores aside) equals the first compute type's.

    \b
    Examples:
      engine bench --task ner --input docs.jsonl
      engine bench --task ner --input docs.jsonl --compute-type float32,int8,bf16
      engine bench --task classification --model ./sentiment --input reviews.csv \\
          --text-field review --records 2000 --threads 2 --output speed.json
    """
    spec = resolve_task(task_name)
    options = parse_task_options(spec, ctx.args, "engine bench")
    if model_dir is None and spec.default_model is None:
        raise click.UsageError(f"task '{spec.name}' has no default model: give --model DIR")
    try:
        fmt = fmt or guess_format(input_path, spec.input_formats)
        found = read_inputs(
            spec, input_path, fmt, text_field=text_field, id_field=id_field, limit=limit
        )
    except InputError as e:
        raise click.ClickException(str(e)) from e
    if found.skipped:
        click.echo(
            f"bench: left out {len(found.skipped)} bad record(s): "
            + first_lines(found.skipped, input_path),
            err=True,
        )
    if not found.inputs:
        raise click.ClickException(f"{input_path}: no record the task '{spec.name}' can run")

    settings = {
        "task": spec.name,
        "model": str(model_dir) if model_dir is not None else None,
        "input": str(input_path.resolve()),
        "format": fmt,
        "text_field": text_field,
        "id_field": id_field,
        "limit": limit,
        "batch_size": batch_size,
        "threads": threads,
        "task_args": list(ctx.args),
        "passes": passes,
        "min_seconds": min_seconds,
    }
    click.echo(
        f"bench: {spec.name}, {len(found.inputs)} records ({found.words} words) of "
        f"{input_path}, batch {batch_size}, threads {threads or 'all cores'}; "
        f"{rounds} round(s) of {', '.join(compute_types)}",
        err=True,
    )
    runs: dict[str, list[dict]] = {name: [] for name in compute_types}

    def report(summary: dict | None, error: str | None = None, final: bool = True) -> None:
        """Writes --output: after every run (so an interrupted bench keeps its runs),
        and once more with the summary, or the error, at the end."""
        if output_path is None:
            return
        content = {
            "complete": summary is not None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": _machine(),
            "nlpengine": nlpengine.__version__,
            "settings": {
                **settings,
                "task_options": options,
                "compute_types": compute_types,
                "rounds": rounds,
            },
            "records": len(found.inputs),
            "words": found.words,
            "skipped": [{"line": line, "reason": reason} for line, reason in found.skipped],
            **({"error": error} if error else {}),
            "summary": summary,
            "runs": {
                name: [{k: v for k, v in r.items() if k != "answer_digests"} for r in rs]
                for name, rs in runs.items()
            },
        }
        output_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(content, indent=2, default=str)  # task options may be paths
        partial = output_path.with_name(output_path.name + ".partial")
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, output_path)  # never a half-written report
        if final:
            click.echo(f"bench: wrote {output_path}", err=True)

    for round_number in range(1, rounds + 1):
        for name in compute_types:
            try:
                run = _run_worker(settings, name)
            except click.ClickException as e:
                report(None, e.format_message())  # the runs so far are kept
                raise
            runs[name].append(run)
            report(None, final=False)
            click.echo(
                f"  round {round_number}/{rounds} {name}: "
                f"{run['records'] / statistics.median(run['pass_s']):.1f} records/s",
                err=True,
            )

    summary = _summarize(runs, compute_types[0])
    click.echo(_table(summary, compute_types[0]))
    for name, entry in summary.items():
        if not entry["outputs_repeat"]:
            click.echo(
                f"bench: {name} wrote other output records in another pass or round "
                "(sampling without --seed?); the answers column compares one pass of each",
                err=True,
            )
    report(summary)


def _run_worker(settings: dict, compute_type: str) -> dict:
    env = {**os.environ, COMPUTE_TYPE_VARIABLE: compute_type}
    proc = subprocess.run(
        [sys.executable, "-m", "nlpengine.benchmark"],
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        raise click.ClickException(
            f"the {compute_type} run failed (exit status {proc.returncode})"
            + (f": {reason}" if reason else "")
        )
    return json.loads(proc.stdout)


def _summarize(runs: dict[str, list[dict]], reference: str) -> dict[str, dict]:
    reference_answers = runs[reference][0]["answer_digests"]
    summary: dict[str, dict] = {}
    for name, rs in runs.items():
        rates = [r["records"] / statistics.median(r["pass_s"]) for r in rs]
        words = [r["words"] / statistics.median(r["pass_s"]) for r in rs]
        answers = rs[0]["answer_digests"]
        same = sum(a == b for a, b in zip(answers, reference_answers, strict=True))
        summary[name] = {
            "records_per_s": {
                "median": statistics.median(rates),
                "min": min(rates),
                "max": max(rates),
            },
            "words_per_s": statistics.median(words),
            "runtime_share": statistics.median(x for r in rs for x in r["runtime_share"]),
            "load_s": statistics.median(r["load_s"] for r in rs),
            "first_result_s": statistics.median(r["first_result_s"] for r in rs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "same_answers_as_reference": same / len(answers),
            # Sampling without a seed, say, answers differently each pass.
            "outputs_repeat": len({d for r in rs for d in r["output_sha256"]}) == 1,
            "arithmetic": rs[0]["arithmetic"],
            "gemm_library": rs[0]["gemm_library"],
        }
    base = summary[reference]["records_per_s"]["median"]
    for entry in summary.values():
        entry["speed_vs_reference"] = entry["records_per_s"]["median"] / base
    return summary


def _table(summary: dict[str, dict], reference: str) -> str:
    rows = [
        "| compute type | records/s median (min-max) | words/s | vs "
        f"{reference} | in runtime | load s | first answer s | peak RSS MB "
        f"| same answers as {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        rate = s["records_per_s"]
        rows.append(
            f"| {name} | {rate['median']:.1f} ({rate['min']:.1f}-{rate['max']:.1f}) "
            f"| {s['words_per_s']:.0f} | {s['speed_vs_reference']:.2f}x "
            f"| {100 * s['runtime_share']:.0f}% | {s['load_s']:.2f} "
            f"| {s['first_result_s']:.2f} | {s['peak_rss_mb']:.0f} "
            f"| {100 * s['same_answers_as_reference']:.1f}% |"
        )
    return "\n".join(rows)


def _machine() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None
            )
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or None,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
