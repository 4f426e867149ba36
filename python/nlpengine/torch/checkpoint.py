"""Loading and saving Hugging Face checkpoints by transformers' weight names.

Reads ``model.safetensors``, a sharded ``model.safetensors.index.json`` or (as a
fallback) ``pytorch_model.bin``. A base checkpoint ("embeddings.*") loads into a
task model ("bert.embeddings.*") and a task checkpoint into a bare encoder; legacy
LayerNorm names ``gamma``/``beta`` are accepted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from nlpengine.torch.config import EncoderConfig, _normalize_head
from nlpengine.torch.heads import POOLER_MODEL_TYPES, EncoderModel, head_weight_names

__all__ = [
    "copy_checked",
    "load_pretrained",
    "model_error",
    "read_state_dict",
    "save_pretrained",
    "write_checkpoint",
    "write_json",
]

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"


def model_error(message: str) -> Exception:
    """nlpengine.ModelError (the runtime's error type for unusable model directories)."""
    try:
        from nlpengine.errors import ModelError
    except ImportError:  # pragma: no cover - native module missing
        return ValueError(message)
    return ModelError(message)


def _legacy_name(name: str) -> str:
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


def read_state_dict(model_dir: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str]]:
    """All tensors of a model directory by name, and the files they came from."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    tensors: dict[str, torch.Tensor] = {}
    single = model_dir / WEIGHTS_NAME
    index = model_dir / WEIGHTS_INDEX_NAME
    if single.is_file():
        files = [single]
    elif index.is_file():
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise model_error(f"{index}: no 'weight_map' object")
        files = [model_dir / name for name in sorted(set(weight_map.values()))]
        for file in files:
            if not file.is_file():
                raise model_error(f"{index}: shard {file.name} is missing")
    elif (model_dir / TORCH_WEIGHTS_NAME).is_file():
        state = torch.load(model_dir / TORCH_WEIGHTS_NAME, map_location="cpu", weights_only=True)
        return {_legacy_name(k): v for k, v in state.items()}, [str(model_dir / TORCH_WEIGHTS_NAME)]
    else:
        raise model_error(f"{model_dir}: no {WEIGHTS_NAME} or {WEIGHTS_INDEX_NAME}")
    for file in files:
        try:
            loaded = load_file(str(file), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise model_error(f"{file}: cannot read safetensors file: {exc}") from exc
        for name, tensor in loaded.items():
            tensors[_legacy_name(name)] = tensor
    return tensors, [str(f) for f in files]


def copy_checked(target: torch.Tensor, value: torch.Tensor, source: str, where: str) -> None:
    """Copy checkpoint tensor ``value`` (named ``source`` in file ``where``) into ``target``,
    refusing another shape or an integer tensor for a floating-point weight."""
    if tuple(value.shape) != tuple(target.shape):
        raise model_error(
            f"{where}: tensor '{source}' has shape {tuple(value.shape)}, "
            f"expected {tuple(target.shape)}"
        )
    if not value.is_floating_point() and target.is_floating_point():
        raise model_error(f"{where}: tensor '{source}' has dtype {value.dtype}")
    target.copy_(value.to(target.dtype))


def write_json(path: Path, data: dict) -> None:
    """A JSON file as transformers writes its configs (indented, sorted keys)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def write_checkpoint(out_dir: Path, state: dict[str, torch.Tensor], config: dict) -> None:
    """``model.safetensors`` (metadata ``{"format": "pt"}``) and ``config.json`` in
    ``out_dir``, removing a stale shard index."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / WEIGHTS_NAME), metadata={"format": "pt"})
    index = out_dir / WEIGHTS_INDEX_NAME
    if index.exists():  # a stale shard index would shadow nothing but confuse readers
        index.unlink()
    write_json(out_dir / "config.json", config)


def _lookup(tensors: dict, name: str, prefix: str, is_encoder: bool) -> str | None:
    """The file's name for model weight ``name`` (prefixed or not for encoder weights)."""
    if name in tensors:
        return name
    if is_encoder:
        if prefix and name.startswith(prefix + "."):
            alt = name[len(prefix) + 1 :]
        else:
            alt = f"{prefix}.{name}"
        if alt in tensors:
            return alt
    return None


def load_pretrained(
    model_dir: str | os.PathLike,
    head: str | None = None,
    num_labels: int | None = None,
    id2label=None,
    problem_type: str | None = None,
) -> EncoderModel:
    """Load a Hugging Face model directory as an :class:`EncoderModel`.

    ``head=None`` takes the head from config.json's "architectures"
    (``*ForTokenClassification`` / ``*ForSequenceClassification``), else a bare
    encoder. A head missing from the checkpoint (fine-tuning a base model) is
    initialised like transformers does; ``num_labels`` or ``id2label`` must then
    be given. Missing encoder weights raise ``nlpengine.ModelError`` naming the
    tensor; extra tensors in the file are ignored (listed in
    ``model.loading_info["unexpected_keys"]``).
    """
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise model_error(f"{model_dir}: config.json is missing")
    try:
        config = EncoderConfig.from_file(config_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise model_error(f"{config_path}: {exc}") from exc
    head = _normalize_head(head) if head is not None else config.head_from_architectures()
    tensors, files = read_state_dict(model_dir)
    where = files[0] if len(files) == 1 else str(model_dir / WEIGHTS_INDEX_NAME)
    prefix = config.base_model_prefix

    # Labels: the checkpoint's head decides its size; arguments may rename labels.
    head_names = head_weight_names(config, head)
    present = [n for n in head_names if n in tensors]
    if head is not None and present:
        out_name = [n for n in head_names if n.endswith("weight")][-1]
        if out_name not in tensors:
            raise model_error(f"{where}: tensor '{out_name}' is missing")
        file_labels = int(tensors[out_name].shape[0])
        if num_labels is not None and num_labels != file_labels:
            raise model_error(
                f"{where}: tensor '{out_name}' has {file_labels} labels, num_labels={num_labels}"
            )
        if id2label is not None:
            config.set_labels(file_labels, id2label)
        elif config.id2label is not None and len(config.id2label) == file_labels:
            config.set_labels(file_labels, config.id2label)
        else:
            config.set_labels(file_labels)
        head_in_file = True
    elif head is not None:
        if num_labels is None and id2label is None:
            raise ValueError(
                f"{model_dir} has no {head} head weights ({', '.join(head_names)}): "
                "pass num_labels or id2label to initialise a new head"
            )
        config.set_labels(num_labels, id2label)
        head_in_file = False
    else:
        head_in_file = False
    if problem_type is not None:
        allowed = ("regression", "single_label_classification", "multi_label_classification")
        if problem_type not in allowed:
            raise ValueError(f"problem_type must be one of {allowed}, got {problem_type!r}")
        config.problem_type = problem_type

    has_pooler = any(
        key in tensors for key in ("pooler.dense.weight", f"{prefix}.pooler.dense.weight")
    )
    add_pooler = head is None and has_pooler and config.model_type in POOLER_MODEL_TYPES
    model = EncoderModel(config, head, add_pooler=add_pooler, init_weights=True)

    head_set = set(head_names)
    used: set[str] = set()
    initialised: list[str] = []
    state = model.state_dict()
    with torch.no_grad():
        for name, target in state.items():
            is_head = name in head_set
            source = _lookup(tensors, name, prefix, is_encoder=not is_head)
            if source is None:
                is_pooler = ".pooler." in f".{name}"
                if is_head and not head_in_file:
                    initialised.append(name)
                    continue
                if is_pooler and head == "sequence_classification":
                    initialised.append(name)  # a base checkpoint without pooler
                    continue
                raise model_error(f"{where}: tensor '{name}' is missing")
            copy_checked(target, tensors[source], source, where)
            used.add(source)
    model.loading_info = {
        "initialized_keys": initialised,
        "unexpected_keys": sorted(set(tensors) - used),
    }
    model.eval()
    return model


def save_pretrained(model: EncoderModel, out_dir: str | os.PathLike) -> None:
    """Write ``config.json`` and ``model.safetensors`` (transformers' names, contiguous
    float tensors, metadata ``{"format": "pt"}``) into ``out_dir``."""
    state = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in model.state_dict().items()
    }
    write_checkpoint(Path(out_dir), state, model.config.to_dict(model.head))
