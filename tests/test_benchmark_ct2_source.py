"""benchmarks/encoder.py's CTranslate2 conversion source for `--model DIR`.

transformers 5 no longer writes `position_embedding_type`, and CTranslate2's converter
reads it for the BERT family: the benchmark then converts from a staging directory of
links with the key added, leaving the model directory as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_model_dir(path: Path, config: dict) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "vocab.txt").write_text("[PAD]\n")
    return path


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "camembert"])
def test_missing_position_type_is_added_in_a_staging_directory(tmp_path, encoder_bench, model_type):
    config = {"model_type": model_type, "hidden_size": 8}
    model_dir = write_model_dir(tmp_path / "model", config)
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}

    source = encoder_bench.ct2_source_dir(model_dir, tmp_path / "ct2-source")

    assert source == tmp_path / "ct2-source"
    expected = {**config, "position_embedding_type": "absolute"}
    assert json.loads((source / "config.json").read_text()) == expected
    for name in ("model.safetensors", "vocab.txt"):
        assert (source / name).is_symlink()
        assert (source / name).read_bytes() == before[name]
    # The model directory itself is untouched.
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "bert", "position_embedding_type": "absolute"},  # already there
        {"model_type": "distilbert"},  # its converter does not read the key
        {"model_type": "electra"},  # no converter: CTranslate2 reports that itself
    ],
)
def test_other_directories_are_converted_as_they_are(tmp_path, encoder_bench, config):
    model_dir = write_model_dir(tmp_path / "model", config)
    assert encoder_bench.ct2_source_dir(model_dir, tmp_path / "ct2-source") == model_dir
    assert not (tmp_path / "ct2-source").exists()
