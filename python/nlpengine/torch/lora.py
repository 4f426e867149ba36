"""LoRA adapters for plain ``torch.nn.Module`` trees, saved in the PEFT layout.

>>> model = apply_lora(model, r=8, alpha=16, targets=("query", "value"))
>>> ...  # train: only the LoRA matrices and ``modules_to_save`` are trainable
>>> save_adapter(model, "out/adapter", base_model_path="models/base", task_type="TOKEN_CLS")

The adapter directory is what ``peft.PeftModel.from_pretrained`` reads
(``adapter_config.json`` + ``adapter_model.safetensors``) and what the runtime's
``nlpengine.load(base, adapter=dir)`` / ``nlpengine.load(dir)`` merges at load time.

Semantics follow PEFT's LoRA:

* a ``targets`` entry matches a module whose name equals it or ends with
  ``"." + target``; every match must be an ``nn.Linear``;
* ``lora_A`` (r, in) starts kaiming-uniform(a=sqrt(5)), ``lora_B`` (out, r) zeros,
  and the layer computes ``base(x) + (alpha / r) * B(A(dropout(x)))``;
* a ``modules_to_save`` entry matches every module whose name ends with it (PEFT
  uses a plain suffix test, so ``"classifier"`` also selects DistilBERT's
  ``pre_classifier``); those modules stay fully trainable and are saved whole.

Names in ``adapter_model.safetensors`` are PEFT's:
``base_model.model.<module>.lora_A.weight``, ``base_model.model.<module>.lora_B.weight``
and ``base_model.model.<module to save>.<param>``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LoraLinear",
    "apply_lora",
    "lora_state_dict",
    "merge_lora",
    "save_adapter",
]

#: Prefix PEFT puts before a module path in adapter_model.safetensors.
PEFT_PREFIX = "base_model.model."
#: Files copied from the base model directory so the adapter directory tokenizes alone.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)
#: config.json keys that describe the task head; the adapter directory's
#: config.json carries only these (the encoder's config comes from the base).
HEAD_CONFIG_KEYS = (
    "architectures",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "nlpengine_token_types",
)

_ATTR = "_nlpengine_lora"  # the settings apply_lora used, kept on the model


class LoraLinear(nn.Linear):
    """An ``nn.Linear`` with a frozen weight/bias plus a trainable low-rank update.

    It keeps the base parameters under their own names (``weight``, ``bias``) so the
    model's state_dict still has the Hugging Face names; the update lives in the
    ``lora_A`` / ``lora_B`` sub-layers as in PEFT.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        nn.Module.__init__(self)
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.r = r
        self.lora_alpha = alpha
        self.scaling = alpha / r
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(base.in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, **factory)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        return out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """scaling * B @ A, shaped like ``weight``."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function (W + scaling * B A)."""
        factory = {"device": self.weight.device, "dtype": self.weight.dtype}
        linear = nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None, **factory
        )
        with torch.no_grad():
            linear.weight.copy_(self.weight + self.delta_weight().to(self.weight.dtype))
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, lora_alpha={self.lora_alpha}"


def _matches_target(name: str, targets) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _saved_module_names(model: nn.Module, modules_to_save) -> list[str]:
    """Modules selected by ``modules_to_save`` (PEFT's suffix test), outermost only."""
    names: list[str] = []
    for name, _ in model.named_modules():
        if not name or not any(name.endswith(t) for t in modules_to_save):
            continue
        if any(name.startswith(n + ".") for n in names):
            continue
        names.append(name)
    return names


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16,
    targets=("query", "value"),
    dropout: float = 0.0,
    modules_to_save=("classifier",),
) -> nn.Module:
    """Replace every targeted ``nn.Linear`` by a :class:`LoraLinear`, in place.

    Freezes every other parameter except those of ``modules_to_save``. Returns
    ``model``. Raises ValueError when no module matches ``targets``, when a match is
    not an ``nn.Linear``, or when a LoRA target lies inside a module to save.
    """
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be a positive integer, got {r!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    targets = _as_tuple(targets)
    modules_to_save = _as_tuple(modules_to_save)
    if not targets:
        raise ValueError("targets must name at least one module")
    saved = _saved_module_names(model, modules_to_save)

    matched = [(n, m) for n, m in model.named_modules() if n and _matches_target(n, targets)]
    if not matched:
        raise ValueError(f"no module of the model matches targets {list(targets)}")
    for name, module in matched:
        if isinstance(module, LoraLinear):
            raise ValueError(f"module '{name}' already has a LoRA adapter")
        if not isinstance(module, nn.Linear):
            raise ValueError(
                f"target module '{name}' is a {type(module).__name__}; LoRA supports nn.Linear only"
            )
        if any(name == s or name.startswith(s + ".") for s in saved):
            raise ValueError(f"target module '{name}' lies inside a module to save")

    for param in model.parameters():
        param.requires_grad_(False)
    for name, module in matched:
        _set_submodule(model, name, LoraLinear(module, r, alpha, dropout))
    for name in saved:
        for param in model.get_submodule(name).parameters():
            param.requires_grad_(True)
    setattr(
        model,
        _ATTR,
        {
            "r": r,
            "alpha": alpha,
            "targets": list(targets),
            "dropout": dropout,
            "modules_to_save": list(modules_to_save),
        },
    )
    return model


def _lora_modules(model: nn.Module) -> list[tuple[str, LoraLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLinear)]


def lora_state_dict(model: nn.Module, modules_to_save=None) -> dict[str, torch.Tensor]:
    """The adapter's tensors under PEFT's names (what adapter_model.safetensors holds).

    ``modules_to_save`` defaults to the one :func:`apply_lora` was given.
    """
    if modules_to_save is None:
        modules_to_save = getattr(model, _ATTR, {}).get("modules_to_save", ())
    out: dict[str, torch.Tensor] = {}
    for name, module in _lora_modules(model):
        out[f"{PEFT_PREFIX}{name}.lora_A.weight"] = module.lora_A.weight.detach()
        out[f"{PEFT_PREFIX}{name}.lora_B.weight"] = module.lora_B.weight.detach()
    for name in _saved_module_names(model, _as_tuple(modules_to_save)):
        for key, value in model.get_submodule(name).state_dict().items():
            out[f"{PEFT_PREFIX}{name}.{key}"] = value.detach()
    return {k: v.contiguous().clone() for k, v in out.items()}


def _task_type(model: nn.Module) -> str | None:
    names = [type(model).__name__]
    config = getattr(model, "config", None)
    archs = getattr(config, "architectures", None) if config is not None else None
    if isinstance(config, dict):
        archs = config.get("architectures")
    names += list(archs or [])
    for n in names:
        if n.endswith("ForTokenClassification"):
            return "TOKEN_CLS"
        if n.endswith("ForSequenceClassification"):
            return "SEQ_CLS"
    return None


def _head_config(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    data = config if isinstance(config, dict) else getattr(config, "to_dict", lambda: None)()
    if not isinstance(data, dict):
        return None
    head = {k: data[k] for k in ("model_type", *HEAD_CONFIG_KEYS) if data.get(k) is not None}
    if not head.get("architectures"):
        return None
    for key in ("id2label", "label2id"):
        if key in head:
            head[key] = {str(k): v for k, v in head[key].items()}
    return head


def save_adapter(
    model: nn.Module,
    out_dir,
    base_model_path,
    r: int | None = None,
    alpha: float | None = None,
    targets=None,
    modules_to_save=None,
    task_type: str | None = None,
    *,
    dropout: float | None = None,
    head_config: dict | None = None,
    copy_tokenizer: bool = True,
) -> Path:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` (PEFT layout).

    ``base_model_path``: the base model directory; written as given to
    ``base_model_name_or_path`` (what PEFT reads) and, relative to ``out_dir``, to
    ``nlpengine_base`` (what the runtime reads first, so adapter and base can move
    together). ``r``, ``alpha``, ``targets``, ``modules_to_save`` and ``dropout``
    default to what :func:`apply_lora` used; ``task_type`` ("TOKEN_CLS", "SEQ_CLS")
    to one guessed from the model's class or ``config.architectures``.

    ``head_config``: the task head's config.json keys (architectures, id2label,
    label2id, num_labels, problem_type, model_type), written to ``out_dir/config.json``;
    by default taken from ``model.config`` when it names an architecture.
    ``copy_tokenizer``: copy the base directory's tokenizer files into ``out_dir``.
    Returns ``out_dir`` as a Path.
    """
    from safetensors.torch import save_file

    used = getattr(model, _ATTR, {})
    r = r if r is not None else used.get("r")
    alpha = alpha if alpha is not None else used.get("alpha")
    targets = list(_as_tuple(targets if targets is not None else used.get("targets")))
    modules_to_save = list(
        _as_tuple(modules_to_save if modules_to_save is not None else used.get("modules_to_save"))
    )
    dropout = dropout if dropout is not None else used.get("dropout", 0.0)
    if r is None or alpha is None or not targets:
        raise ValueError("save_adapter needs r, alpha and targets (or a model from apply_lora)")
    lora = _lora_modules(model)
    if not lora:
        raise ValueError("the model has no LoRA layers: call apply_lora first")
    for name, module in lora:
        if module.r != r:
            raise ValueError(f"LoRA layer '{name}' has r={module.r}, but r={r} was given")
    task_type = task_type or _task_type(model)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = os.fspath(base_model_path)
    config = {
        "peft_type": "LORA",
        "task_type": task_type,
        "base_model_name_or_path": base,
        "nlpengine_base": os.path.relpath(os.path.abspath(base), os.path.abspath(out)),
        "revision": None,
        "inference_mode": True,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "target_modules": targets,
        "exclude_modules": None,
        "modules_to_save": modules_to_save or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        "lora_bias": False,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "loftq_config": {},
        "layer_replication": None,
        "auto_mapping": None,
    }
    with open(out / "adapter_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    tensors = lora_state_dict(model, modules_to_save)
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})

    head = head_config if head_config is not None else _head_config(model)
    if head:
        with open(out / "config.json", "w", encoding="utf-8") as f:
            json.dump(head, f, indent=2, sort_keys=True)
            f.write("\n")
    if copy_tokenizer and os.path.isdir(base) and os.path.abspath(base) != os.path.abspath(out):
        for name in TOKENIZER_FILES:
            src = os.path.join(base, name)
            if os.path.isfile(src):
                shutil.copyfile(src, out / name)
    return out


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its linear (W += scaling * B @ A), in place.

    The LoRA layers become plain ``nn.Linear`` modules, so the state_dict has only
    the Hugging Face names again (ready for ``save_pretrained`` or the runtime).
    Returns ``model``.
    """
    for name, module in _lora_modules(model):
        _set_submodule(model, name, module.merged())
    if hasattr(model, _ATTR):
        delattr(model, _ATTR)
    return model
