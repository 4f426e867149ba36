"""Training options: from the command line, a config file (JSON or TOML), or both
(the command line wins)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters on the ``targets`` linear layers (PEFT semantics)."""

    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    dropout: float = 0.0

    @classmethod
    def parse(cls, text: str) -> LoraSettings:
        """``r=8,alpha=16,targets=query,value`` (a bare word after ``targets=`` is one
        more target)."""
        values: dict = {}
        key = None
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "=" in part:
                key, value = (s.strip() for s in part.split("=", 1))
                if key not in ("r", "alpha", "targets", "dropout"):
                    raise ValueError(
                        f"--lora: unknown setting '{key}' (r, alpha, targets, dropout)"
                    )
                if key == "targets":
                    values["targets"] = [value]
                else:
                    values[key] = value
            elif key == "targets":
                values["targets"].append(part)
            else:
                raise ValueError(f"--lora: expected key=value, got '{part}'")
        try:
            settings = cls(
                r=int(values.get("r", cls.r)),
                alpha=float(values.get("alpha", cls.alpha)),
                targets=tuple(values.get("targets", cls.targets)),
                dropout=float(values.get("dropout", cls.dropout)),
            )
        except ValueError as e:
            raise ValueError(f"--lora: {e}") from e
        if settings.r < 1 or not settings.targets:
            raise ValueError("--lora: r must be >= 1 and targets non-empty")
        return settings


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 16  # global batch: split across processes under torchrun
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 13
    eval_batch_size: int = 64
    threads: int | None = None
    lora: LoraSettings | None = None
    limit_train: int | None = None  # use only the first N training examples
    # How token type ids are made (nlpengine.tokenization.TOKEN_TYPE_SCHEMES): "casing"
    # feeds each word's capitalisation, for bases whose tokenizer lower-cases.
    token_types: str = "segments"
    task_options: dict = field(default_factory=dict)  # the task's own options (--items F, ...)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> dict:
        """The options a config file sets (keys as the long option names, - or _)."""
        text = Path(path).read_text(encoding="utf-8")
        if Path(path).suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
                import tomli as tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a table/object of options")
        known = {f.name for f in fields(cls)}
        options = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"{path}: unknown training option '{key}'")
            if name == "lora" and isinstance(value, str):
                value = LoraSettings.parse(value)
            elif name == "lora" and isinstance(value, dict):
                value = LoraSettings(**{**value, "targets": tuple(value.get("targets", ()))})
            options[name] = value
        return options

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.lora is not None:
            d["lora"] = {**asdict(self.lora), "targets": list(self.lora.targets)}
        return d
