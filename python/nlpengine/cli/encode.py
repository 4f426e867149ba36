"""``engine encode``: sentence embeddings for a file of texts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

import nlpengine
from nlpengine.cli.options import compute_type_option
from nlpengine.models import default_encoder_dir
from nlpengine.tokenization import load_tokenizer


def _read_texts(path: Path, text_field: str):
    """Yield (line_number, text) from a .txt (one text per line) or .jsonl file."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if path.suffix == ".jsonl":
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise click.ClickException(f"{path}:{number}: not valid JSON ({e.msg})") from e
                if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                    raise click.ClickException(f"{path}:{number}: no string field '{text_field}'")
                yield number, record[text_field]
            else:
                yield number, line.rstrip("\n")


@click.command()
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model directory in Hugging Face layout [default: the bundled all-MiniLM-L6-v2].",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Texts: .txt (one per line) or .jsonl.",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL output [default: stdout].",
)
@click.option("--text-field", default="text", show_default=True, help="Field of .jsonl records.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=None, type=click.IntRange(min=1), help="[default: all cores]")
@compute_type_option
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="L2-normalise the mean-pooled embeddings.",
)
def encode(model_dir, input_path, output_path, text_field, batch_size, threads, normalize):
    """Mean-pooled sentence embeddings, one JSON record per input text.

    \b
    Example:
      engine encode --input examples/sentences.txt --output embeddings.jsonl
    """
    try:
        model_dir = model_dir or default_encoder_dir()
        model = nlpengine.load(model_dir, threads=threads)
        max_length = model.config["max_sequence_length"]
        tokenizer = load_tokenizer(model_dir, max_length=max_length)
    except nlpengine.ModelError as e:
        raise click.ClickException(str(e)) from e
    out = output_path.open("w", encoding="utf-8") if output_path else sys.stdout
    start, count = time.perf_counter(), 0
    try:
        records = list(_read_texts(input_path, text_field))
        for i in range(0, len(records), batch_size):
            chunk = records[i : i + batch_size]
            encodings = tokenizer.encode_batch([text for _, text in chunk])
            for (number, _), enc in zip(chunk, encodings, strict=True):
                if enc.overflowing:
                    click.echo(
                        f"warning: {input_path}:{number}: truncated to {max_length} tokens",
                        err=True,
                    )
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            if not model.config["type_vocab_size"]:
                types = None
            hidden = model.encode(ids, mask, types).last_hidden_state
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            if normalize:
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for (number, _), vector in zip(chunk, pooled, strict=True):
                out.write(
                    json.dumps({"id": number, "embedding": [round(float(v), 6) for v in vector]})
                )
                out.write("\n")
            out.flush()
            count += len(chunk)
    finally:
        if output_path:
            out.close()
    elapsed = time.perf_counter() - start
    click.echo(
        f"encoded {count} texts with {model_dir} in {elapsed:.2f} s "
        f"({count / max(elapsed, 1e-9):.1f} texts/s)",
        err=True,
    )
