"""``nlpengine.pipeline``: a task's callable, as the CLI uses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nlpengine.errors import ModelError
from nlpengine.plugins import get_registry
from nlpengine.tasks import TaskSpec
from nlpengine.tokenization import TOKEN_TYPES_KEY, model_token_type_scheme


class TaskPipeline:
    """Runs one task on texts or task records; returns one result per input, in order."""

    def __init__(self, spec: TaskSpec, model_dir: Path, runner, options: dict[str, Any]):
        self.spec = spec
        self.model_dir = model_dir
        self.options = options
        self._run = runner

    @property
    def runner(self):
        """The task's own pipeline object (what ``create_pipeline`` returned)."""
        return self._run

    def __call__(self, inputs):
        """``inputs``: a text, a task record (dict), or a list of them. A single input
        gives a single result; a list gives a list."""
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else list(inputs)
        converted = [
            self.spec.to_input(x if isinstance(x, dict) else {"text": x}, "text") for x in items
        ]
        results = self._run(converted) if converted else []
        return results[0] if single else results

    def run_inputs(self, inputs: list, sources: list[str] | None = None) -> list:
        """Run on already converted pipeline inputs (what ``spec.to_input`` returns).

        ``sources`` names each input for warnings and errors (``file:line (id ...)``); it
        reaches the task's pipeline when that declares ``accepts_sources = True`` and
        takes a ``sources`` keyword."""
        if not inputs:
            return []
        if sources is not None and getattr(self._run, "accepts_sources", False):
            return self._run(inputs, sources=sources)
        return self._run(inputs)

    def __repr__(self) -> str:
        return f"TaskPipeline(task={self.spec.name!r}, model={str(self.model_dir)!r})"


def pipeline(
    task: str,
    model: str | os.PathLike | None = None,
    *,
    threads: int | None = None,
    batch_size: int = 32,
    **options: Any,
) -> TaskPipeline:
    """The callable for ``task`` on the model directory ``model`` (the task's default
    model when None), with task options as keyword arguments.

    >>> ner = nlpengine.pipeline("ner", model="path/to/ner-model", aggregation_strategy="first")
    >>> ner(["Ada Lovelace was born in London."])
    [[{'label': 'PER', 'text': 'Ada Lovelace', 'start': 0, 'end': 12, 'score': 0.99}, ...]]
    """
    spec = get_registry().task(task)
    if model is None:
        if spec.default_model is None:
            raise ValueError(f"task '{task}' has no default model: pass model=DIR")
        model = spec.default_model()
    model_dir = Path(model)
    scheme = model_token_type_scheme(model_dir)
    if scheme not in spec.token_type_schemes:
        raise ModelError(
            f"{model_dir / 'config.json'}: the model takes '{scheme}' token types "
            f"({TOKEN_TYPES_KEY}), which task '{task}' cannot make (it makes: "
            f"{', '.join(spec.token_type_schemes)})"
        )
    resolved = spec.resolve_options(options)
    runner = spec.create_pipeline(model_dir, threads=threads, batch_size=batch_size, **resolved)
    return TaskPipeline(spec, model_dir, runner, resolved)
