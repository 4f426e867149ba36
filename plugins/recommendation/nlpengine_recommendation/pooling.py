"""Sentence embeddings as sentence-transformers defines them for a model directory:
``modules.json`` lists the modules, the Pooling module's ``config.json`` (``1_Pooling``)
picks the pooling (CLS token, mean or max over the real tokens), a ``Normalize`` module
L2-normalises the result. A directory without ``modules.json`` gets mean pooling and no
normalisation (sentence-transformers' default for a plain transformers checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nlpengine.errors import ModelError

MODES = ("mean", "cls", "max")
_CONFIG_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
_UNSUPPORTED = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                "pooling_mode_lasttoken")  # fmt: skip


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read: {e}") from e


@dataclass(frozen=True)
class PoolingConfig:
    mode: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None  # sentence_bert_config.json's, when given

    @classmethod
    def from_directory(cls, model_dir: str | Path) -> PoolingConfig:
        model_dir = Path(model_dir)
        max_seq_length = None
        bert_config = model_dir / "sentence_bert_config.json"
        if bert_config.is_file():
            value = _read_json(bert_config).get("max_seq_length")
            if isinstance(value, int) and value > 0:
                max_seq_length = value
        modules_path = model_dir / "modules.json"
        if not modules_path.is_file():
            return cls(max_seq_length=max_seq_length)
        modules = _read_json(modules_path)
        if not isinstance(modules, list):
            raise ModelError(f"{modules_path}: expected a list of modules")
        mode, normalize = "mean", False
        for module in modules:
            kind = str(module.get("type", "")) if isinstance(module, dict) else ""
            if kind.endswith(".Normalize"):
                normalize = True
            elif kind.endswith(".Pooling"):
                mode = _pooling_mode(model_dir / str(module.get("path", "")) / "config.json")
        return cls(mode, normalize, max_seq_length)

    def to_files(self, model_dir: str | Path, hidden_size: int) -> None:
        """Write ``modules.json``, ``1_Pooling/config.json`` (and ``2_Normalize``), as
        sentence-transformers saves a model with these modules."""
        model_dir = Path(model_dir)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"},
        ]  # fmt: skip
        if self.normalize:
            modules.append(
                {"idx": 2, "name": "2", "path": "2_Normalize",
                 "type": "sentence_transformers.models.Normalize"}
            )  # fmt: skip
            (model_dir / "2_Normalize").mkdir(parents=True, exist_ok=True)
        pooling = {"word_embedding_dimension": hidden_size}
        pooling.update({key: self.mode == mode for key, mode in _CONFIG_KEYS.items()})
        pooling.update({key: False for key in _UNSUPPORTED})
        (model_dir / "1_Pooling").mkdir(parents=True, exist_ok=True)
        _write_json(model_dir / "1_Pooling" / "config.json", pooling)
        _write_json(model_dir / "modules.json", modules)
        if self.max_seq_length is not None:
            _write_json(
                model_dir / "sentence_bert_config.json",
                {"max_seq_length": self.max_seq_length, "do_lower_case": False},
            )


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _pooling_mode(path: Path) -> str:
    config = _read_json(path)
    if not isinstance(config, dict):
        raise ModelError(f"{path}: expected a JSON object")
    if "pooling_mode" in config:  # sentence-transformers' shorthand form
        modes = [str(config["pooling_mode"]).replace("_token", "").replace("_tokens", "")]
    else:
        modes = [mode for key, mode in _CONFIG_KEYS.items() if config.get(key)]
        modes += [key for key in _UNSUPPORTED if config.get(key)]
    if len(modes) != 1 or modes[0] not in MODES:
        raise ModelError(
            f"{path}: pooling {modes or 'none'} is not supported (one of: CLS token, mean or "
            "max of the tokens)"
        )
    return modes[0]


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(batch, seq, hidden) token vectors and (batch, seq) mask -> (batch, hidden)."""
    hidden = np.asarray(hidden, dtype=np.float32)
    keep = np.asarray(mask, dtype=np.float32)[:, :, None]
    if mode == "cls":
        return hidden[:, 0].copy()
    if mode == "max":
        return np.where(keep > 0, hidden, np.float32(-1e9)).max(axis=1)
    total = (hidden * keep).sum(axis=1)
    return total / np.maximum(keep.sum(axis=1), 1e-9)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (torch.nn.functional.normalize's eps of 1e-12)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
