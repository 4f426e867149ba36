"""Task specifications: what a plugin registers for each task it provides.

A task supplies a head (the runtime head its models use), a data adapter (how an
input record becomes a pipeline input, and a result an output record), a pipeline
factory, metrics (through ``evaluate``) and its own options with defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RecordError(ValueError):
    """An input record the task cannot use (missing field, wrong type, ...)."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def record_text(record: dict, field: str) -> str:
    """The string ``record[field]`` (a text task's pipeline input); a RecordError naming
    the field when it is missing, null, not a string, or not Unicode text (an unpaired
    surrogate, which tokenizers refuse)."""
    if field not in record or record[field] is None:
        raise RecordError(f"missing text field '{field}'")
    text = record[field]
    if not isinstance(text, str):
        raise RecordError(f"field '{field}' must be a string, got {type(text).__name__}")
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise RecordError(
            f"field '{field}' holds an unpaired surrogate (\\u{ord(surrogate.group()):04x} at "
            f"character {surrogate.start() + 1}), which is not Unicode text"
        )
    return text


@dataclass(frozen=True)
class TaskOption:
    """A task-specific option, exposed as ``--name-with-dashes`` on ``engine run``/``eval``
    and as a keyword argument of ``nlpengine.pipeline``."""

    name: str
    type: Any = str  # a click type or Python type
    default: Any = None
    help: str = ""
    multiple: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class TrainingSpec:
    """What ``engine train`` needs from a task: no task-specific code lives in the trainer.

    ``read_examples(path)`` reads a training file (raising an error naming file and line).
    ``label_list(examples)`` gives the label names in class-index order.
    ``featurize(examples, tokenizer, label2id, max_length)`` returns one dict per example
    with ``input_ids``, ``attention_mask``, optional ``token_type_ids`` (lists of ints) and
    ``labels`` (an int for sequence heads, a list per token with -100 where no loss is
    taken for token heads, a multi-hot list of floats for multi-label heads, or a short
    list of ints such as a span head's start and end positions, with ``loss``).
    ``problem_type(examples)`` is "single_label_classification", "multi_label_classification"
    or None. ``metric`` names the key of ``TaskSpec.evaluate``'s result that picks the best
    epoch (higher is better).

    Tasks whose model is not an encoder with a classification head (an encoder-decoder,
    say) also set:
    ``load_model(base_dir, labels, problem_type)``: the torch module to fine-tune, with
    ``save_pretrained(dir)`` (default: ``nlpengine.torch.load_pretrained`` with the task's
    head); ``featurize_options(base_dir)``: extra keyword arguments for ``featurize`` read
    from the base model (e.g. a source prefix from its config.json); ``model_inputs``: the
    batch keys passed to the model as keyword arguments (an encoder-decoder takes
    ``labels`` for teacher forcing; every list-valued feature is padded to the longest in
    its batch: ids with the pad id, masks with 0, labels with -100); ``supports_lora``.
    Heads whose labels are per token ("token_classification", "seq2seq_lm") take a cross
    entropy over every label that is not -100.
    ``loss(logits, labels)``: for a head whose loss is none of those, the loss summed over
    the batch's examples and the number of examples (the trainer averages over the global
    batch); e.g. a span QA head's start/end cross entropies.
    ``collate(features, pad_id)``: for features that are not one padded sequence per example
    (a batch of several texts per example, say), the dict of tensors a batch becomes
    (``labels`` included); default: pad ``input_ids``/``attention_mask``/``token_type_ids``.
    ``task_options``: names of the task's options (``TaskSpec.options``, given to
    ``engine train`` as to ``engine run``) that ``read_examples``, ``featurize_options`` and
    ``load_model`` take as keyword arguments, e.g. a file the examples refer to. Every task
    option given to ``engine train`` also reaches the pipeline that scores each epoch.
    """

    read_examples: Callable[[Path], list]
    label_list: Callable[[list], list[str]]
    featurize: Callable[..., list[dict]]
    problem_type: Callable[[list], str | None] = lambda examples: None
    metric: str = "f1"
    load_model: Callable[[Path, list[str], str | None], Any] | None = None
    featurize_options: Callable[[Path], dict] | None = None
    model_inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    supports_lora: bool = True
    loss: Callable[[Any, Any], tuple[Any, Any]] | None = None
    collate: Callable[[list[dict], int], dict] | None = None
    task_options: tuple[str, ...] = ()


@dataclass
class TaskSpec:
    """Everything the engine needs to run, evaluate and describe a task.

    ``create_pipeline(model_dir, *, threads, batch_size, **options)`` returns a callable
    taking a list of pipeline inputs and returning one result per input, in order.
    ``to_input(record, text_field)`` turns an input record (a dict) into a pipeline input,
    raising :class:`RecordError` with a reason for a record it cannot use.
    ``to_output(record_id, result)`` turns a result into the output record.
    ``evaluate(pipeline, data_path, options)`` scores the pipeline on a gold file and
    returns a JSON-serialisable dict of metrics.
    ``default_model()`` gives the model directory used when ``--model`` is not given.
    ``token_type_schemes``: the token-type schemes (``nlpengine.tokenization``) the task's
    pipeline and ``TrainingSpec.featurize`` (its ``token_types`` keyword) can make; a model
    whose config.json asks for another is refused with an error naming it.
    """

    name: str
    description: str
    head: str
    create_pipeline: Callable[..., Callable[[list], list]]
    to_input: Callable[[dict, str], Any]
    to_output: Callable[[Any, Any], dict]
    evaluate: Callable[[Any, Path, dict], dict] | None = None
    default_model: Callable[[], Path] | None = None
    options: Sequence[TaskOption] = ()
    input_formats: Sequence[str] = ("jsonl", "csv", "tsv", "text", "conll")
    training: TrainingSpec | None = None
    token_type_schemes: Sequence[str] = ("segments",)
    # Filled in by the registry from the registering plugin's entry point.
    plugin: str = ""
    version: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)

    def option_defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """The task's defaults updated with ``given``; unknown names are an error."""
        known = self.option_defaults()
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TypeError(
                f"task '{self.name}' has no option(s) {', '.join(unknown)}; "
                f"its options are: {', '.join(sorted(known)) or '(none)'}"
            )
        known.update(given)
        return known


def packaged_model(package_file: str) -> Path:
    """The ``default_model`` directory shipped beside a plugin module (``__file__``);
    raises ModelError when the plugin ships none."""
    path = Path(package_file).resolve().parent / "default_model"
    if not (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        from nlpengine.errors import ModelError

        raise ModelError(f"{path}: no built-in model is installed; pass --model DIR")
    return path
