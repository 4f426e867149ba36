"""The GEMM library behind the CPU products: MKL or oneDNN (ops/cpu/gemm_library.h).

The library is chosen once per process (MKL on Intel CPUs without AMX, oneDNN elsewhere when the
``onednn-cpu-gomp`` package is installed; ``NLPENGINE_GEMM_LIBRARY`` overrides), so each
library runs in its own subprocess here, on the real all-MiniLM-L6-v2 and a batch of
sentences long enough that int8 layers run in sequence groups. Both must give the same
model: float32 within 1e-4 of transformers (the parity tolerance), int8 mean-pooled
vectors with a cosine of at least 0.999 between the libraries. Their int8 products are
exact, so most sentences come out identical; but the float32 attention products differ
in rounding, which can move an activation across a quantization step, and in a long
sentence that moved the vector by as much as int8 itself does (0.99925 measured, against
0.999 between either library's int8 and float32).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import nlpengine
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

SENTENCES = [
    "The ferry leaves the harbour at seven and returns after dark.",
    "Prices at the market went up twice in one month, and nobody could say why.",
    "He fixed the bicycle chain with a paperclip and kept riding.",
    "Short one.",
    "The committee will publish its findings on the river clean-up early next spring, "
    "after the last water samples from the upper valley have been tested.",
    "Rain is expected over the weekend.",
] * 4

RUN = textwrap.dedent(
    """
    import sys, numpy as np, nlpengine
    model_dir, compute_type, ids_path, out_path = sys.argv[1:]
    batch = np.load(ids_path)
    model = nlpengine.load(model_dir, threads=2, compute_type=compute_type)
    hidden = model.encode(batch["ids"], batch["mask"]).last_hidden_state
    np.save(out_path, hidden)
    print(nlpengine.gemm_library())
    print("int8_codes", nlpengine.int8_activation_max(), nlpengine.int8_weight_max())
    """
)


def run_with(
    library: str, model_dir, compute_type: str, ids_path, tmp_path, info=None
) -> np.ndarray:
    """The last hidden state under ``library``; ``info`` (a dict) gets its int8 code ranges."""
    out = tmp_path / f"{library}-{compute_type}.npy"
    env = {**os.environ, "NLPENGINE_GEMM_LIBRARY": library}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(model_dir), compute_type, str(ids_path), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    expected = {"mkl": "MKL ", "onednn": "oneDNN 3."}[library]
    assert proc.stdout.startswith(expected), proc.stdout
    if info is not None:
        activation_max, weight_max = proc.stdout.split("int8_codes")[1].split()
        info["int8_codes"] = (int(activation_max), int(weight_max))
    return np.load(out)


@pytest.fixture(scope="module")
def batch_file(minilm_dir, tmp_path_factory):
    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0)
    encodings = tokenizer.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    path = tmp_path_factory.mktemp("gemm") / "batch.npz"
    np.savez(path, ids=ids, mask=mask)
    return path


def test_the_process_reports_its_gemm_library():
    assert nlpengine.gemm_library().startswith(("MKL ", "oneDNN 3."))


def test_both_libraries_match_transformers_in_float32(minilm_dir, batch_file, tmp_path):
    batch = np.load(batch_file)
    with torch.no_grad():
        reference = (
            AutoModel.from_pretrained(minilm_dir)
            .eval()(
                input_ids=torch.from_numpy(batch["ids"]),
                attention_mask=torch.from_numpy(batch["mask"]),
            )
            .last_hidden_state.numpy()
        )
    real = batch["mask"].astype(bool)
    for library in ("mkl", "onednn"):
        hidden = run_with(library, minilm_dir, "float32", batch_file, tmp_path)
        diff = np.abs(hidden[real] - reference[real]).max()
        print(f"{library}: max abs diff to transformers {diff:.2e}")
        assert diff <= 1e-4, library


def test_both_libraries_give_the_same_int8_model(minilm_dir, batch_file, tmp_path):
    """The same int8 model where both libraries take the same codes.

    On a CPU without VNNI one library may sum 8-bit products exactly where the other
    saturates (MKL and oneDNN on an AMD EPYC with AVX2: input codes up to 255 and 127):
    the two then quantize differently, and each must stay as close to float32 as
    tests/test_compute_type.py asks of int8 with its input range.
    """
    mask = np.load(batch_file)["mask"]

    def pooled(hidden):
        vectors = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    vectors, ranges = {}, {}
    for library in ("mkl", "onednn"):
        info = {}
        vectors[library] = pooled(run_with(library, minilm_dir, "int8", batch_file, tmp_path, info))
        ranges[library] = info["int8_codes"]
        assert ranges[library] in ((255, 127), (127, 127)), ranges
    if ranges["mkl"] == ranges["onednn"]:
        cosine = (vectors["mkl"] * vectors["onednn"]).sum(1)
        print(f"int8 cosine between libraries: min {cosine.min():.6f}")
        assert cosine.min() >= 0.999
        return
    reference = pooled(run_with("onednn", minilm_dir, "float32", batch_file, tmp_path))
    for library, (activation_max, weight_max) in ranges.items():
        cosine = (vectors[library] * reference).sum(1)
        print(
            f"{library} int8 (input codes up to {activation_max}, weight codes up to {weight_max}) "
            f"cosine to float32: mean {cosine.mean():.5f}, min {cosine.min():.5f}"
        )
        # Measured on the AMD EPYC: MKL mean 0.99976, least 0.99953; oneDNN 0.99955, 0.99918.
        mean_floor, min_floor = (0.999, 0.998) if activation_max == 255 else (0.999, 0.997)
        assert cosine.mean() >= mean_floor and cosine.min() >= min_floor, (library, cosine)


def test_an_unknown_library_is_named_in_the_error(minilm_dir, batch_file, tmp_path):
    env = {**os.environ, "NLPENGINE_GEMM_LIBRARY": "openblas"}
    out = tmp_path / "x.npy"
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(minilm_dir), "float32", str(batch_file), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "NLPENGINE_GEMM_LIBRARY=openblas: expected mkl or onednn" in proc.stderr
