"""Task ``sentence-embedding``: a head the runtime does not know (mean pooling with L2
normalisation), computed from the runtime's hidden states."""

from __future__ import annotations

import click
import nlpengine
import numpy as np
from nlpengine.hookspecs import hookimpl
from nlpengine.tasks import RecordError, TaskOption, TaskSpec
from nlpengine.tokenization import load_tokenizer


class SentenceEmbedder:
    def __init__(self, model_dir, *, threads, batch_size, normalize, digits):
        self.model = nlpengine.load(model_dir, threads=threads)
        self.tokenizer = load_tokenizer(
            model_dir, max_length=self.model.config["max_sequence_length"]
        )
        self.batch_size = batch_size
        self.normalize = normalize
        self.digits = digits

    def __call__(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for i in range(0, len(texts), self.batch_size):
            encodings = self.tokenizer.encode_batch(texts[i : i + self.batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self.model.encode(ids, mask).last_hidden_state
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1.0)
            if self.normalize:
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            vectors.extend([round(float(v), self.digits) for v in row] for row in pooled)
        return vectors


def to_input(record, text_field):
    text = record.get(text_field)
    if not isinstance(text, str):
        raise RecordError(f"missing text field '{text_field}'")
    return text


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name="sentence-embedding",
            description="Mean-pooled sentence embeddings (example third-party plugin).",
            head="pooled_embedding",
            create_pipeline=SentenceEmbedder,
            to_input=to_input,
            to_output=lambda record_id, vector: {"id": record_id, "embedding": vector},
            options=(
                TaskOption("normalize", bool, True, "L2-normalise the embeddings."),
                TaskOption("digits", int, 6, "Decimal digits kept in the output."),
            ),
        )
    )


@hookimpl
def register_commands(cli):
    @cli.command(name="embedding-size")
    @click.option("--model", "model_dir", required=True)
    def embedding_size(model_dir):
        """Print the embedding size of a model (example plugin command).

        Example: engine embedding-size --model ./all-MiniLM-L6-v2
        """
        click.echo(nlpengine.load(model_dir).config["hidden_size"])
