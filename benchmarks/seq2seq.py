#!/usr/bin/env python3
"""Seq2seq generation benchmark: nlpengine vs. transformers, CTranslate2 and ONNX Runtime.

Encoder-decoder models with bart-base and t5-small sizes and random weights
(transformers' own initialisation under a fixed seed) are built once by the
parent and saved in Hugging Face layout (config.json, generation_config.json,
model.safetensors and a word-level tokenizer over placeholder token strings)
into a temporary directory; never downloaded.  For the CTranslate2 systems the
parent also converts each directory once with ``TransformersConverter``; for the
ONNX Runtime systems it exports each once into encoder and decoder graphs, fp32 and
dynamically quantized int8 (``onnx_seq2seq.py`` says how, and how the ``ort``
systems decode: a numpy beam loop over the graphs' top-k candidates).

Workload: ``--sources`` (16) sources of ``--source-len`` (256) token ids,
random non-special ids framed as the model's tokenizer frames text (BART
``<s> ... </s>``, T5 ``... </s>``), seed 1234, all batched in one call.  Every
system generates exactly ``--new-tokens`` (64) new tokens per source: minimum
and maximum new tokens are both set, so the end token can never be chosen and
no beam finishes early (a directory's ``forced_eos_token_id``, which real bart-base and
Marian configs set, is switched off: it would force the end token at the last step).
Greedy search and beam search with 4 beams (one returned sequence per source); on
request (``--searches``) multinomial sampling filtered by top-k (``topk50``) or top-p
(``topp0.9``), temperature 1, a fixed seed (every system draws with its own generator,
so their samples differ, and only the speed is compared; ONNX Runtime's numpy loop does
not sample).
Metric: generated tokens/s = sources x new tokens / seconds of one generate call.

Every system runs in its own subprocess (the script re-invokes itself with
``--worker SYSTEM``) with ``--threads`` threads, one subprocess per (round,
model, search, system).  Rounds are interleaved and the system order
alternates between rounds.  A worker imports its runtime (``import_s``),
loads the model (``load_s``), warms up with one generate call of
``--warmup-tokens`` new tokens on the same batch, then times ``--passes``
generate calls.  It asserts that every sequence has exactly ``--new-tokens``
generated tokens and no end token, and dumps the generated ids of the first
round so the parent can compare them with transformers'.

CTranslate2's ``min_decoding_length``/``max_decoding_length`` count the
generated tokens after the decoder start token (the start token is not
counted, an end token is), which is what transformers' ``min_new_tokens``/
``max_new_tokens`` count: both are set to ``--new-tokens``.

Usage::

    python benchmarks/seq2seq.py                     # full run: 2 models x 2 searches x 7-9 systems
    python benchmarks/seq2seq.py --models tiny --sources 2 --source-len 16 --new-tokens 8 \\
        --rounds 1                                   # smoke test
    python benchmarks/seq2seq.py --models t5-small --searches greedy --systems nlpengine,ct2
    python benchmarks/seq2seq.py --models bart-base --searches greedy,topk50,topp0.9 \
        --systems nlpengine-int8,transformers,ct2-int8
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import (
    child_env,
    cpu_flags,
    csv_list,
    describe_arithmetic,
    git_state,
    machine_info,
    package_version,
    peak_rss_mb,
    run_worker_process,
    write_report,
)
from gemm_ceiling import ceiling_rate, measure_ceiling
from onnx_seq2seq import OnnxSeq2seq, export_seq2seq_onnx

REFERENCE_SYSTEM = "transformers"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "seq2seq.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Print a status message to stderr."""
    print(f"[seq2seq-bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A random-weight model: its transformers config and its token-id layout."""

    model_type: str  # "bart" or "t5"
    config: dict[str, object]
    description: str
    specials: dict[int, str]  # special ids and their token strings
    content_limit: int  # sources use ids below this that are not special
    prefix: tuple[int, ...]  # ids framing each source, as the tokenizer adds them
    suffix: tuple[int, ...]


_BART_IDS = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
_BART_COMMON = dict(
    _BART_IDS,
    activation_function="gelu",
    scale_embedding=False,
    normalize_before=False,  # bart-base's config says so; CTranslate2's converter reads it
    forced_bos_token_id=None,
    forced_eos_token_id=None,
)
_T5_IDS = dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
_T5_COMMON = dict(
    _T5_IDS,
    feed_forward_proj="relu",
    tie_word_embeddings=True,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    layer_norm_epsilon=1e-6,
)


def _bart(description: str, vocab: int, d_model: int, layers: int, heads: int, ffn: int):
    return ModelSpec(
        model_type="bart",
        config=dict(
            _BART_COMMON,
            vocab_size=vocab,
            d_model=d_model,
            encoder_layers=layers,
            decoder_layers=layers,
            encoder_attention_heads=heads,
            decoder_attention_heads=heads,
            encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn,
            max_position_embeddings=1024,
        ),
        description=description,
        specials={0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>", vocab - 1: "<mask>"},
        content_limit=vocab - 1,
        prefix=(0,),
        suffix=(2,),
    )


def _t5(description: str, vocab: int, d_model: int, layers: int, heads: int, d_kv: int, ffn: int):
    sentinels = 128 if vocab > 1000 else 0  # t5's 100 <extra_id_*> and 28 unused rows
    return ModelSpec(
        model_type="t5",
        config=dict(
            _T5_COMMON,
            vocab_size=vocab,
            d_model=d_model,
            d_ff=ffn,
            d_kv=d_kv,
            num_layers=layers,
            num_decoder_layers=layers,
            num_heads=heads,
        ),
        description=description,
        specials={0: "<pad>", 1: "</s>", 2: "<unk>"},
        content_limit=vocab - sentinels,
        prefix=(),
        suffix=(1,),
    )


MODELS: dict[str, ModelSpec] = {
    "bart-base": _bart(
        "BART, bart-base sizes (d_model 768, 6+6 layers, 12 heads, FFN 3072, vocab 50265)",
        vocab=50265,
        d_model=768,
        layers=6,
        heads=12,
        ffn=3072,
    ),
    "t5-small": _t5(
        "T5 v1.0, t5-small sizes (d_model 512, d_ff 2048, 6+6 layers, 8 heads, d_kv 64, "
        "vocab 32128, relative attention, ReLU, tied)",
        vocab=32128,
        d_model=512,
        layers=6,
        heads=8,
        d_kv=64,
        ffn=2048,
    ),
    # Smoke-test sizes.
    "tiny-bart": _bart(
        "tiny BART (d_model 64, 2+2 layers)", vocab=512, d_model=64, layers=2, heads=4, ffn=128
    ),
    "tiny-t5": _t5(
        "tiny T5 (d_model 64, 2+2 layers)",
        vocab=512,
        d_model=64,
        layers=2,
        heads=4,
        d_kv=16,
        ffn=128,
    ),
}
MODEL_ALIASES = {"tiny": ("tiny-bart", "tiny-t5")}
DEFAULT_MODELS = ("bart-base", "t5-small")


def build_model(name: str, out_dir: Path, seed: int) -> dict[str, object]:
    """Build model ``name`` with random weights and save it in HF layout at ``out_dir``.

    Weights: transformers' own initialisation under ``torch.manual_seed(seed)``.
    generation_config.json holds the token ids only (no forced tokens, no
    n-gram blocking, greedy), so only the options the benchmark passes matter.
    The tokenizer maps id ``i`` to ``tok{i}`` (special ids to their usual
    strings); CTranslate2's converter needs one, the other systems take ids.
    """
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    spec = MODELS[name]
    config_class = {"bart": transformers.BartConfig, "t5": transformers.T5Config}[spec.model_type]
    model_class = {
        "bart": transformers.BartForConditionalGeneration,
        "t5": transformers.T5ForConditionalGeneration,
    }[spec.model_type]
    config = config_class(**spec.config)
    torch.manual_seed(seed)
    model = model_class(config).eval()
    ids = {k: v for k, v in spec.config.items() if k.endswith("_token_id") and v is not None}
    model.generation_config = transformers.GenerationConfig(**ids)
    model.save_pretrained(out_dir)

    vocab_size = int(spec.config["vocab_size"])
    vocab = {spec.specials.get(i, f"tok{i}"): i for i in range(vocab_size)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special_names = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    if spec.model_type == "bart":
        special_names.update(bos_token="<s>", mask_token="<mask>")
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, **special_names
    ).save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    return {"description": spec.description, "parameters": int(n_params), **spec.config}


def spec_from_dir(model_dir: Path) -> ModelSpec:
    """The spec of a Hugging Face layout encoder-decoder directory given to ``--models``.

    Its weights are used as they are. Sources are framed as its tokenizer frames a text
    (the ids it adds around one, with and without special tokens), and their content ids
    are drawn from the vocabulary minus the tokenizer's special tokens and the config's
    special ids.
    """
    from tokenizers import Tokenizer

    config_path, tokenizer_path = model_dir / "config.json", model_dir / "tokenizer.json"
    for path in (config_path, tokenizer_path):
        if not path.is_file():
            raise SystemExit(
                f"no {path.name} in {model_dir}: --models DIR takes a Hugging Face layout "
                "directory with its tokenizer.json"
            )
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type")
    if model_type not in ("bart", "t5", "marian"):
        raise SystemExit(
            f"{config_path}: model_type {model_type!r}; seq2seq.py runs bart, t5, marian"
        )
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    plain = tokenizer.encode("benchmark", add_special_tokens=False).ids
    framed = tokenizer.encode("benchmark").ids
    starts = [i for i in range(len(framed) - len(plain) + 1) if framed[i : i + len(plain)] == plain]
    if not plain or not starts:
        raise SystemExit(f"{tokenizer_path}: cannot tell which ids it adds around a text")
    prefix, suffix = framed[: starts[0]], framed[starts[0] + len(plain) :]
    specials = {i: t.content for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    for key in ("pad_token_id", "eos_token_id", "bos_token_id", "decoder_start_token_id"):
        if isinstance(config.get(key), int):
            specials.setdefault(config[key], key)
    if not isinstance(config.get("eos_token_id"), int):
        raise SystemExit(f"{config_path}: no integer eos_token_id")
    return ModelSpec(
        model_type=model_type,
        config=config,
        description=f"{model_type} from {model_dir}",
        specials=specials,
        content_limit=min(int(config["vocab_size"]), tokenizer.get_vocab_size()),
        prefix=tuple(prefix),
        suffix=tuple(suffix),
    )


def convert_ct2(hf_dir: Path, out_dir: Path) -> None:
    """Convert the HF directory to a CTranslate2 model (weights stay float32)."""
    import ctranslate2

    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(out_dir))


def build_sources(model: str | ModelSpec, n_sources: int, source_len: int, seed: int) -> np.ndarray:
    """``n_sources`` x ``source_len`` ids: uniform non-special ids inside the model's framing."""
    spec = MODELS[model] if isinstance(model, str) else model
    name = model if isinstance(model, str) else spec.description
    body_len = source_len - len(spec.prefix) - len(spec.suffix)
    if body_len < 1:
        raise SystemExit(f"--source-len {source_len} leaves no room for content tokens")
    max_positions = spec.config.get("max_position_embeddings")
    if max_positions is not None and source_len > int(max_positions):
        raise SystemExit(f"--source-len {source_len} > {name}'s {max_positions} positions")
    candidates = np.setdiff1d(np.arange(spec.content_limit, dtype=np.int64), list(spec.specials))
    rng = np.random.default_rng(seed)
    body = rng.choice(candidates, size=(n_sources, body_len))
    prefix = np.tile(np.array(spec.prefix, dtype=np.int64), (n_sources, 1))
    suffix = np.tile(np.array(spec.suffix, dtype=np.int64), (n_sources, 1))
    return np.concatenate([prefix, body, suffix], axis=1).astype(np.int64)


# --------------------------------------------------------------------------
# Systems (worker side).  One loader per system, registered in SYSTEMS.
# --------------------------------------------------------------------------


class Unavailable(Exception):
    """The system cannot run here (e.g. a runtime option that does not exist yet)."""


@dataclass(frozen=True)
class Search:
    """A search of the benchmark: greedy, beam search, or multinomial sampling (temperature
    1, seed 0) over the top_k best tokens (0: all) or the top_p nucleus (1.0: all)."""

    beams: int = 1
    sample: bool = False
    top_k: int = 0
    top_p: float = 1.0


SAMPLING_SEED = 0


@dataclass
class LoadedSystem:
    """A loaded model.

    ``generate(input_ids, attention_mask, search, new_tokens)`` returns the
    generated ids of the best (or the sampled) sequence per source, decoder start token
    excluded, cut after the first end token (included) if any.
    """

    generate: Callable[[np.ndarray, np.ndarray, Search, int], list[list[int]]]
    info: dict[str, object]


@dataclass(frozen=True)
class Artifacts:
    """What the parent made from the model for some systems: a CTranslate2 model, ONNX graphs."""

    ct2: Path | None = None
    onnx: Path | None = None


def _until_eos(rows: list[list[int]], eos_id: int) -> list[list[int]]:
    return [row[: row.index(eos_id) + 1] if eos_id in row else row for row in rows]


def _load_nlpengine(model_dir: Path, threads: int, **load_options) -> LoadedSystem:
    import nlpengine

    try:
        model = nlpengine.load(str(model_dir), threads=threads, **load_options)
    except (TypeError, ValueError, NotImplementedError) as exc:
        if not load_options:
            raise
        raise Unavailable(f"nlpengine.load(..., {load_options}) raised {exc!r}") from exc
    eos_id = int(model.hf_config["eos_token_id"])

    def generate(ids: np.ndarray, mask: np.ndarray, search: Search, new_tokens: int):
        sampling = (
            dict(top_k=search.top_k, top_p=search.top_p, temperature=1.0, seed=SAMPLING_SEED)
            if search.sample
            else {}
        )
        out = model.generate(
            ids,
            mask,
            num_beams=search.beams,
            min_new_tokens=new_tokens,
            max_new_tokens=new_tokens,
            do_sample=search.sample,
            **sampling,
            num_return_sequences=1,
            length_penalty=1.0,
            no_repeat_ngram_size=0,
            repetition_penalty=1.0,
            forced_eos_token_id=None,  # a directory's forced end token would take the last step
        )
        return _until_eos(out.sequences[:, 1:].tolist(), eos_id)

    info = {
        "versions": {"nlpengine": getattr(nlpengine, "__version__", None)},
        "nlpengine_path": str(Path(nlpengine.__file__).parent),
        "compute_type": getattr(model, "compute_type", "float32"),
        "model_threads": model.threads,
        "repr": repr(model),
        # The threads it computes on: threads=, at most the CPUs this process may use.
        "threads_used": model.threads,
    }
    return LoadedSystem(generate, info)


def load_nlpengine(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """nlpengine fp32."""
    return _load_nlpengine(model_dir, threads)


def load_nlpengine_int8(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """nlpengine with int8 weights (``compute_type="int8"``; unavailable if load rejects it)."""
    return _load_nlpengine(model_dir, threads, compute_type="int8")


def load_nlpengine_bf16(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """nlpengine with ``compute_type="bf16"`` (unavailable if load rejects it)."""
    return _load_nlpengine(model_dir, threads, compute_type="bf16")


def load_nlpengine_int8_mixed(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """nlpengine with ``compute_type="int8-mixed"`` (unavailable if load rejects it)."""
    return _load_nlpengine(model_dir, threads, compute_type="int8-mixed")


def _load_transformers(model_dir: Path, threads: int, autocast_dtype: str | None) -> LoadedSystem:
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
    model.eval()
    eos_id = int(model.config.eos_token_id)
    dtype = getattr(torch, autocast_dtype) if autocast_dtype else None

    def generate(ids: np.ndarray, mask: np.ndarray, search: Search, new_tokens: int):
        sampling = {}
        if search.sample:
            torch.manual_seed(SAMPLING_SEED)
            sampling = dict(top_k=search.top_k, top_p=search.top_p, temperature=1.0)
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            out = model.generate(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                num_beams=search.beams,
                min_new_tokens=new_tokens,
                max_new_tokens=new_tokens,
                do_sample=search.sample,
                **sampling,
                num_return_sequences=1,
                length_penalty=1.0,
                no_repeat_ngram_size=0,
                repetition_penalty=1.0,
                forced_eos_token_id=None,
            )
        return _until_eos(out[:, 1:].tolist(), eos_id)

    info = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "compute_type": str(next(model.parameters()).dtype),
        "torch_num_threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "autocast": f"torch.autocast('cpu', dtype=torch.{autocast_dtype})" if dtype else None,
    }
    return LoadedSystem(generate, info)


def load_transformers(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """transformers AutoModelForSeq2SeqLM, fp32, PyTorch eager, generate() in inference_mode."""
    return _load_transformers(model_dir, threads, None)


def load_transformers_bf16(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """The fp32 model's generate() under ``torch.autocast("cpu", dtype=torch.bfloat16)``."""
    return _load_transformers(model_dir, threads, "bfloat16")


def read_ct2_vocabulary(ct2_dir: Path, side: str) -> list[str]:
    """A converted model's ``side`` ("source" or "target") vocabulary, shared or not."""
    for stem in ("shared_vocabulary", f"{side}_vocabulary"):
        json_path = ct2_dir / f"{stem}.json"
        if json_path.exists():
            return json.loads(json_path.read_text())
        txt_path = ct2_dir / f"{stem}.txt"
        if txt_path.exists():
            return txt_path.read_text(encoding="utf-8").split("\n")[:-1]
    raise SystemExit(f"no {side} vocabulary in {ct2_dir}")


def forced_bos_token_id(model_dir: Path) -> int | None:
    """The first token transformers forces for this directory: ``forced_bos_token_id`` of
    its generation_config.json (else config.json, as transformers falls back), or None."""
    for name in ("generation_config.json", "config.json"):
        path = model_dir / name
        if path.is_file():
            value = json.loads(path.read_text()).get("forced_bos_token_id")
            return None if value is None else int(value)
    return None


def _load_ct2(
    ct2_dir: Path | None, threads: int, compute_type: str, forced_bos: int | None = None
) -> LoadedSystem:
    import ctranslate2

    if ct2_dir is None:
        raise SystemExit("the ct2 systems need --ct2-model")
    source_vocab = read_ct2_vocabulary(ct2_dir, "source")
    target_vocab = read_ct2_vocabulary(ct2_dir, "target")
    target_index = {token: i for i, token in enumerate(target_vocab)}
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    eos_token = ct2_config["eos_token"]
    translator = ctranslate2.Translator(
        str(ct2_dir),
        device="cpu",
        compute_type=compute_type,
        inter_threads=1,
        intra_threads=threads,
    )

    # A forced first token (transformers' forced_bos_token_id) as a target prefix, which
    # CTranslate2 returns with the hypothesis and counts in its decoding length.
    prefix = None if forced_bos is None else [target_vocab[forced_bos]]

    def generate(ids: np.ndarray, mask: np.ndarray, search: Search, new_tokens: int):
        if search.sample:
            ctranslate2.set_random_seed(SAMPLING_SEED)
        source = [
            [source_vocab[i] for i, keep in zip(row, row_mask, strict=True) if keep]
            for row, row_mask in zip(ids.tolist(), mask.tolist(), strict=True)
        ]
        options = {} if prefix is None else {"target_prefix": [prefix] * len(source)}
        results = translator.translate_batch(
            source,
            beam_size=search.beams,
            num_hypotheses=1,
            min_decoding_length=new_tokens,
            max_decoding_length=new_tokens,
            return_end_token=True,  # an end token, if one slipped through, is counted
            max_input_length=0,  # no truncation
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            # greedy: the best token; sampling: from the top k (0: every token), top-p nucleus
            sampling_topk=search.top_k if search.sample else 1,
            sampling_topp=search.top_p,
            sampling_temperature=1.0,
            **options,
        )
        rows = [[target_index[t] for t in r.hypotheses[0]] for r in results]
        return _until_eos(rows, target_index[eos_token])

    info = {
        "versions": {"ctranslate2": ctranslate2.__version__},
        "compute_type": getattr(translator, "compute_type", compute_type),
        "requested_compute_type": compute_type,
        "intra_threads": threads,
        "ct2_config": ct2_config,
    }
    return LoadedSystem(generate, info)


def load_ct2(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """CTranslate2 Translator, compute_type float32."""
    return _load_ct2(artifacts.ct2, threads, "float32", forced_bos_token_id(model_dir))


def load_ct2_int8(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """CTranslate2 Translator, compute_type int8 (weights quantized at load)."""
    return _load_ct2(artifacts.ct2, threads, "int8", forced_bos_token_id(model_dir))


def _load_ort(onnx_dir: Path | None, threads: int, suffix: str) -> LoadedSystem:
    if onnx_dir is None:
        raise SystemExit("the ort systems need --onnx-model")
    runner = OnnxSeq2seq(onnx_dir, threads, suffix)

    def generate(ids: np.ndarray, mask: np.ndarray, search: Search, new_tokens: int):
        return runner.generate(ids, mask, search.beams, new_tokens).tolist()

    return LoadedSystem(generate, dict(runner.info))


def load_ort(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """ONNX Runtime CPU, the exported fp32 graphs."""
    return _load_ort(artifacts.onnx, threads, "")


def load_ort_int8(model_dir: Path, artifacts: Artifacts, threads: int) -> LoadedSystem:
    """ONNX Runtime CPU, the graphs with dynamically quantized int8 weights."""
    return _load_ort(artifacts.onnx, threads, "_int8")


@dataclass(frozen=True)
class SystemSpec:
    """A benchmarked system.

    ``modules`` are imported before the load timer starts, so ``load_s``
    measures loading the model, not importing the runtime (``import_s``).
    ``precision`` picks the CTranslate2 baseline of the ``vs ct2`` ratio (``ct2`` for
    fp32; ``ct2-int8`` for int8 and for bf16, which CTranslate2 does not run on CPUs
    without AVX512-BF16: the fastest CTranslate2 there, as encoder.py compares every
    fast mode with the fastest fast peer) and the GEMM ceiling; ``env`` is added to the
    worker's environment.
    """

    modules: tuple[str, ...]
    load: Callable[[Path, Artifacts, int], LoadedSystem]
    precision: str  # "fp32", "bf16" or "int8"
    env: dict[str, str] = field(default_factory=dict)
    needs_ct2: bool = False
    needs_onnx: bool = False
    samples: bool = True  # runs the sampling searches


SYSTEMS: dict[str, SystemSpec] = {
    "nlpengine": SystemSpec(("nlpengine",), load_nlpengine, "fp32"),
    "nlpengine-int8": SystemSpec(("nlpengine",), load_nlpengine_int8, "int8"),
    "nlpengine-bf16": SystemSpec(("nlpengine",), load_nlpengine_bf16, "bf16"),
    "nlpengine-int8-mixed": SystemSpec(("nlpengine",), load_nlpengine_int8_mixed, "int8"),
    "transformers": SystemSpec(("torch", "transformers"), load_transformers, "fp32"),
    "transformers-bf16": SystemSpec(("torch", "transformers"), load_transformers_bf16, "bf16"),
    "ct2": SystemSpec(("ctranslate2",), load_ct2, "fp32", needs_ct2=True),
    "ct2-int8": SystemSpec(("ctranslate2",), load_ct2_int8, "int8", needs_ct2=True),
    # ct2-int8 with oneMKL's memory manager off (its buffer cache kept in RSS); not a default.
    "ct2-int8-nofastmm": SystemSpec(
        ("ctranslate2",),
        load_ct2_int8,
        "int8",
        env={"MKL_DISABLE_FAST_MM": "1"},
        needs_ct2=True,
    ),
    "ort": SystemSpec(("onnxruntime",), load_ort, "fp32", needs_onnx=True, samples=False),
    "ort-int8": SystemSpec(("onnxruntime",), load_ort_int8, "int8", needs_onnx=True, samples=False),
}
# The bf16 systems run by default where the CPU has bf16 instructions; elsewhere torch
# widens every bf16 product in software (transformers-bf16 bart-base beam 4 on an
# AVX2-only AMD EPYC: 11 tokens/s against fp32's 24), nlpengine's bf16 runs at about
# float32's speed, and they run only when asked for.
DEFAULT_SYSTEMS = tuple(
    name
    for name in (
        "nlpengine",
        "nlpengine-int8",
        "nlpengine-bf16",
        "transformers",
        "transformers-bf16",
        "ct2",
        "ct2-int8",
        "ort",
        "ort-int8",
    )
    if not name.endswith("-bf16") or cpu_flags(("avx512_bf16", "amx_bf16"))
)
CT2_BASELINE = {"fp32": "ct2", "int8": "ct2-int8", "bf16": "ct2-int8"}


def parse_search(search: str) -> Search:
    """A search by name: "greedy", "beamN" (N beams), "topkK" (sampling from the K best
    tokens) or "toppP" (sampling from the top-P nucleus, 0 < P < 1)."""
    if search == "greedy":
        return Search()
    if search.startswith("beam") and search[4:].isdigit() and int(search[4:]) >= 1:
        return Search(beams=int(search[4:]))
    if search.startswith("topk") and search[4:].isdigit() and int(search[4:]) >= 1:
        return Search(sample=True, top_k=int(search[4:]))
    if search.startswith("topp"):
        try:
            top_p = float(search[4:])
        except ValueError:
            top_p = 0.0
        if 0.0 < top_p < 1.0:
            return Search(sample=True, top_p=top_p)
    raise ValueError(
        f"unknown search {search!r} (greedy, beamN, topkK or toppP, e.g. beam4, topk50, topp0.9)"
    )


def generation_flops(
    model: str | ModelSpec, sources: int, source_len: int, beams: int, new_tokens: int
) -> dict[str, float]:
    """The arithmetic of one generate call of the benchmark (2 FLOPs per multiply-add).

    Encoder: every source token through each layer's products (attention q, k, v, out and
    the feed-forward's, gated T5 with three matrices) and attention over the source (q·kᵀ
    and the weighted sum of v: 4 · source_len · inner per token and layer); then each
    decoder layer's cross-attention keys and values of every source token, once. Decoder:
    ``new_tokens`` steps of sources x beams rows, each row through each layer's
    self-attention, cross-attention q and out and feed-forward products, attention over
    its step + 1 past keys and the source_len source keys, and the LM head. Beam
    bookkeeping, norms and softmax are not counted. ``model``: a preset's name or a spec.
    """
    spec = MODELS[model] if isinstance(model, str) else model
    config = spec.config
    if spec.model_type == "t5":
        d, inner = config["d_model"], config["num_heads"] * config["d_kv"]
        enc_ffn = dec_ffn = config["d_ff"]
        enc_layers = config["num_layers"]
        dec_layers = config.get("num_decoder_layers") or enc_layers
        ffn_mats = 3 if str(config.get("feed_forward_proj", "relu")).startswith("gated") else 2
    else:  # bart, marian
        d = inner = config["d_model"]
        enc_ffn, dec_ffn = config["encoder_ffn_dim"], config["decoder_ffn_dim"]
        enc_layers, dec_layers, ffn_mats = config["encoder_layers"], config["decoder_layers"], 2
    vocab = config["vocab_size"]
    source_tokens = sources * source_len
    layer_products = 4 * d * inner + ffn_mats * d * enc_ffn
    encoder = source_tokens * enc_layers * (2 * layer_products + 4 * source_len * inner)
    cross_memory = source_tokens * dec_layers * 2 * (2 * d * inner)
    rows = sources * beams
    step_products = (
        dec_layers * (4 * d * inner + 2 * d * inner + ffn_mats * d * dec_ffn) + d * vocab
    )
    decoder = 0.0
    for step in range(new_tokens):
        attention = dec_layers * 4 * inner * ((step + 1) + source_len)
        decoder += rows * (2 * step_products + attention)
    return {
        "encoder": float(encoder),
        "cross_memory": float(cross_memory),
        "decoder": float(decoder),
        "total": float(encoder + cross_memory + decoder),
    }


def run_worker(args: argparse.Namespace) -> None:
    """Benchmark one (model, search, system) in this process and print one JSON line."""
    if args.worker == "ceiling":
        result = measure_ceiling(args.threads, args.ceiling_size, args.ceiling_reps, args.seed)
        print(json.dumps(result), flush=True)
        return
    with np.load(args.inputs) as data:
        input_ids = data["input_ids"]
        attention_mask = data["attention_mask"]
        eos_id = int(data["eos_id"])
    n_sources = input_ids.shape[0]
    search = parse_search(args.search)
    new_tokens = args.new_tokens
    warmup_tokens = min(args.warmup_tokens, new_tokens)
    base = {"system": args.worker, "model": args.model_name, "search": args.search}

    spec = SYSTEMS[args.worker]
    start = time.perf_counter()
    for module in spec.modules:
        importlib.import_module(module)
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    artifacts = Artifacts(
        ct2=Path(args.ct2_model) if args.ct2_model else None,
        onnx=Path(args.onnx_model) if args.onnx_model else None,
    )
    try:
        loaded = spec.load(Path(args.model_dir), artifacts, args.threads)
    except Unavailable as exc:
        print(json.dumps({**base, "unavailable": str(exc)}), flush=True)
        return
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    loaded.generate(input_ids, attention_mask, search, warmup_tokens)
    warmup_s = time.perf_counter() - start

    seconds, generated = [], None
    for _ in range(args.passes):
        gc.collect()
        start = time.perf_counter()
        generated = loaded.generate(input_ids, attention_mask, search, new_tokens)
        seconds.append(time.perf_counter() - start)

    lengths = sorted({len(row) for row in generated})
    eos_seen = any(eos_id in row for row in generated)
    if len(generated) != n_sources or lengths != [new_tokens] or eos_seen:
        raise SystemExit(
            f"{args.worker}: expected {n_sources} sequences of exactly {new_tokens} new tokens "
            f"without the end token, got {len(generated)} sequences of lengths {lengths} "
            f"(end token present: {eos_seen})"
        )
    if args.dump:
        np.save(args.dump, np.array(generated, dtype=np.int64))

    result = {
        **base,
        "num_beams": search.beams,
        "sampling": {"top_k": search.top_k, "top_p": search.top_p} if search.sample else None,
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "warmup_tokens": warmup_tokens,
        "generate_s": seconds,
        "tokens_per_s": [n_sources * new_tokens / s for s in seconds],
        "sequences": len(generated),
        "generated_tokens_per_sequence": lengths[0],
        "end_token_generated": eos_seen,
        "peak_rss_mb": peak_rss_mb(),
        **loaded.info,
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Orchestration (parent side)
# --------------------------------------------------------------------------


def worker_command(
    system: str,
    model_name: str,
    search: str,
    paths: dict[str, Path],
    args: argparse.Namespace,
    dump: Path | None,
) -> list[str]:
    """The command line that runs one worker."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", system,
        "--model-name", model_name,
        "--model-dir", str(paths["hf"]),
        "--inputs", str(paths["inputs"]),
        "--search", search,
        "--threads", str(args.threads),
        "--new-tokens", str(args.new_tokens),
        "--warmup-tokens", str(args.warmup_tokens),
        "--passes", str(args.passes),
    ]  # fmt: skip
    if "ct2" in paths:
        cmd += ["--ct2-model", str(paths["ct2"])]
    if "onnx" in paths:
        cmd += ["--onnx-model", str(paths["onnx"])]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    return cmd


def run_cell(
    system: str,
    model: str,
    search: str,
    paths: dict[str, Path],
    args: argparse.Namespace,
    dump: Path | None,
) -> tuple[str, dict[str, object]]:
    """Run one worker: ("ok", result), ("unavailable", {...}) or ("error", {...})."""
    cmd = worker_command(system, model, search, paths, args, dump)
    run = run_worker_process(cmd, child_env(args.threads, SYSTEMS[system].env))
    if run.returncode != 0 or run.result is None:
        tail = "\n".join(run.stderr.strip().splitlines()[-3:])
        log(f"  {system} failed (exit code {run.returncode}); skipping it for {model}")
        return "error", {"error": f"exit code {run.returncode}: {tail}"}
    if "unavailable" in run.result:
        log(f"  {system} unavailable: {run.result['unavailable']}")
        return "unavailable", {"unavailable": run.result["unavailable"]}
    return "ok", run.result


def compare_outputs(candidate: np.ndarray, reference: np.ndarray) -> dict[str, object]:
    """Exact-match fraction of sources, token agreement and first divergence."""
    if candidate.shape != reference.shape:
        raise SystemExit(f"generated shape mismatch: {candidate.shape} vs {reference.shape}")
    same = candidate == reference
    exact = same.all(axis=1)
    first_diff = [int(np.argmin(row)) for row in same if not row.all()]
    return {
        "sources": int(candidate.shape[0]),
        "exact_match_fraction": float(exact.mean()),
        "token_agreement": float(same.mean()),
        "first_divergence_positions": first_diff,
    }


def output_diversity(generated: np.ndarray) -> dict[str, object]:
    """How varied the reference outputs are (random weights often repeat one token)."""
    return {
        "distinct_sequences": len({tuple(row) for row in generated.tolist()}),
        "distinct_tokens": len(np.unique(generated)),
        "mean_distinct_tokens_per_sequence": float(
            np.mean([len(np.unique(row)) for row in generated])
        ),
    }


_PER_RUN_KEYS = {
    "system",
    "model",
    "search",
    "import_s",
    "load_s",
    "warmup_s",
    "generate_s",
    "tokens_per_s",
    "peak_rss_mb",
}


def summarize(runs: list[dict[str, object]]) -> dict[str, object]:
    """Aggregate one (model, search, system)'s per-round worker results."""
    per_round = [statistics.median(r["tokens_per_s"]) for r in runs]
    return {
        "tokens_per_s_per_round": per_round,
        "tokens_per_s_per_pass": [r["tokens_per_s"] for r in runs],
        "median": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
        "generate_s_per_pass": [r["generate_s"] for r in runs],
        "load_s_per_round": [r["load_s"] for r in runs],
        "load_s_median": statistics.median(r["load_s"] for r in runs),
        "peak_rss_mb_per_round": [r["peak_rss_mb"] for r in runs],
        "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
        "import_s_per_round": [r["import_s"] for r in runs],
        "warmup_s_per_round": [r["warmup_s"] for r in runs],
        "info": {k: v for k, v in runs[0].items() if k not in _PER_RUN_KEYS},
    }


def _fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def markdown_report(report: dict[str, object]) -> str:
    """Render the headline numbers as markdown."""
    s = report["settings"]
    machine = report["machine"]
    versions = report["versions"]
    lines = [
        f"Seq2seq generation benchmark ({report['timestamp']}): {s['sources']} sources x "
        f"{s['source_len']} tokens in one batch, exactly {s['new_tokens']} new tokens each, "
        f"{s['threads']} threads, {s['rounds']} round(s) x {s['passes']} pass(es). "
        f"Tokens/s = {s['sources']} x {s['new_tokens']} / seconds (best sequence per source).",
        "",
        f"Machine: {machine['cpu_model']} ({machine['nproc']} cpus, "
        f"flags {' '.join(machine['cpu_flags']) or '-'}), load average before start "
        f"{machine['loadavg'][0]:.2f}, nlpengine GEMM library "
        f"{machine.get('nlpengine_gemm_library') or '-'} ({describe_arithmetic(machine)}). "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None) + ".",
        "",
        "| model | search | system | tok/s median | min | max | vs transformers | vs ct2 "
        "| GFLOP/s | of ceiling | greedy exact match | load s | peak RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, by_search in report["results"].items():
        for search, by_system in by_search.items():
            accuracy = report["accuracy"].get(model, {}).get(search, {})
            for system, res in by_system.items():
                if "median" not in res:
                    status = "unavailable" if "unavailable" in res else "failed"
                    why = res.get("unavailable") or res.get("error") or "no result"
                    why = why.strip().splitlines()[-1][:120]
                    lines.append(
                        f"| {model} | {search} | {system} | {status}: "
                        f"{why.replace('|', '/')} | | | | | | | | | |"
                    )
                    continue
                match = "-"
                if search == "greedy" and system in accuracy:
                    match = f"{accuracy[system]['exact_match_fraction']:.3f}"
                elif search == "greedy" and system == REFERENCE_SYSTEM:
                    match = "(ref)"
                baseline = res.get("ct2_baseline")
                vs_ct2 = _fmt_ratio(res.get("vs_ct2"))
                if baseline and baseline != "ct2" and res.get("vs_ct2") is not None:
                    vs_ct2 += f" ({baseline})"
                fraction = res.get("fraction_of_ceiling")
                fraction = f"{fraction:.0%} ({res['precision']})" if fraction is not None else "-"
                lines.append(
                    f"| {model} | {search} | {system} | {res['median']:.1f} | {res['min']:.1f} | "
                    f"{res['max']:.1f} | {_fmt_ratio(res.get('vs_transformers'))} | {vs_ct2} | "
                    f"{res['gflops']:.1f} | {fraction} | "
                    f"{match} | {res['load_s_median']:.2f} | {res['peak_rss_mb_median']:.0f} |"
                )
    lines += [
        "",
        "vs ct2: fp32 systems against `ct2`, int8 and bf16 systems against `ct2-int8` "
        "(CTranslate2 runs no bf16 on CPUs without AVX512-BF16). "
        "ort: ONNX Runtime over graphs exported from transformers, searched by a numpy loop "
        "over the graphs' top-k candidates (onnx_seq2seq.py). Greedy exact "
        "match: fraction of sources whose generated tokens equal transformers' exactly. "
        "GFLOP/s: one call's products and attention (generation_flops: encoder, cross-attention "
        "memory, every decoding step of sources x beams rows with the LM head) over its median "
        "seconds, as a fraction of the GEMM ceiling measured at the same threads (int8 and "
        "int8-mixed systems against the int8 rate)"
        + (
            ": "
            + ", ".join(
                f"{p} {report['ceiling'][p]['gflops_median']:.0f} GFLOP/s"
                for p in ("fp32", "bf16", "int8")
                if "gflops_median" in report["ceiling"].get(p, {})
            )
            if report.get("ceiling")
            else ""
        )
        + ". "
        f"Every completed run generated exactly {s['new_tokens']} tokens per sequence "
        "(asserted by the worker).",
    ]
    for model, by_search in report["accuracy"].items():
        for search, acc in by_search.items():
            div = report["reference_output_diversity"].get(model, {}).get(search)
            if div:
                lines.append(
                    f"- {model} {search}: transformers' outputs have {div['distinct_sequences']} "
                    f"distinct sequences, {div['distinct_tokens']} distinct tokens "
                    f"({div['mean_distinct_tokens_per_sequence']:.1f} per sequence); "
                    + "; ".join(
                        f"{system} exact {a['exact_match_fraction']:.3f}, "
                        f"tokens {a['token_agreement']:.3f}"
                        for system, a in acc.items()
                    )
                )
    return "\n".join(lines)


def run_parent(args: argparse.Namespace) -> None:
    """Build models and workloads, run interleaved worker rounds, write and print the report."""
    machine = machine_info()
    if machine["loadavg"] and machine["loadavg"][0] > 0.5:
        log(f"warning: load average {machine['loadavg'][0]:.2f} before start; timings may be noisy")

    results: dict[str, dict[str, dict[str, object]]] = {}
    accuracy: dict[str, dict[str, dict[str, object]]] = {}
    diversity: dict[str, dict[str, dict[str, object]]] = {}
    model_info: dict[str, dict[str, object]] = {}
    orders: list[list[str]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="seq2seq-bench-") as tmp:
        tmp_dir = Path(tmp)
        paths: dict[str, dict[str, Path]] = {}
        # (model, "ct2" or "onnx") -> why the conversion or export for those systems failed
        artifact_failures: dict[tuple[str, str], str] = {}
        import torch  # only the parent's model building uses torch

        torch.set_num_threads(args.threads)
        for name in args.models:
            spec = args.model_specs[name]
            model_paths = {"hf": tmp_dir / name / "hf", "inputs": tmp_dir / name / "inputs.npz"}
            (tmp_dir / name).mkdir(parents=True, exist_ok=True)  # a directory model makes none
            start = time.perf_counter()
            if name in args.model_dirs:  # the user's directory, as it is
                model_paths["hf"] = args.model_dirs[name]
                info = {"description": spec.description, "parameters": None, **spec.config}
            else:
                info = build_model(name, model_paths["hf"], args.seed)
            info["build_s"] = time.perf_counter() - start
            if any(SYSTEMS[s].needs_ct2 for s in args.systems):
                start = time.perf_counter()
                try:
                    convert_ct2(model_paths["hf"], tmp_dir / name / "ct2")
                    model_paths["ct2"] = tmp_dir / name / "ct2"
                except Exception as exc:  # the ct2 systems are unavailable for this model
                    artifact_failures[(name, "ct2")] = f"CTranslate2 conversion failed: {exc!r}"[
                        :500
                    ]
                    log(f"  {artifact_failures[(name, 'ct2')]}")
                info["ct2_convert_s"] = time.perf_counter() - start
            if any(SYSTEMS[s].needs_onnx for s in args.systems):
                start = time.perf_counter()
                try:
                    info["onnx_export"] = export_seq2seq_onnx(
                        model_paths["hf"], tmp_dir / name / "onnx"
                    )
                    model_paths["onnx"] = tmp_dir / name / "onnx"
                except Exception as exc:  # the ort systems are unavailable for this model
                    artifact_failures[(name, "onnx")] = f"ONNX export failed: {exc!r}"[:500]
                    log(f"  {artifact_failures[(name, 'onnx')]}")
                info["onnx_export_s"] = time.perf_counter() - start
            ids = build_sources(spec, args.sources, args.source_len, args.seed)
            eos_id = int(spec.config["eos_token_id"])
            np.savez(
                model_paths["inputs"],
                input_ids=ids,
                attention_mask=np.ones_like(ids),
                eos_id=np.array(eos_id),
            )
            info["source_framing"] = {
                "prefix": list(spec.prefix),
                "suffix": list(spec.suffix),
            }
            model_info[name] = info
            paths[name] = model_paths
            log(
                (
                    f"built {name} ({info['parameters'] / 1e6:.1f}M parameters) in "
                    f"{info['build_s']:.1f} s"
                    if info["parameters"] is not None
                    else f"{name}: {spec.description}"
                )
                + (
                    f", ct2 conversion {info['ct2_convert_s']:.1f} s"
                    if "ct2" in model_paths
                    else ""
                )
                + (
                    f", ONNX export and quantization {info['onnx_export_s']:.1f} s"
                    if "onnx" in model_paths
                    else ""
                )
            )
        gc.collect()

        runs = {m: {q: {s: [] for s in args.systems} for q in args.searches} for m in args.models}
        skipped: dict[tuple[str, str, str], dict] = {}  # (model, search, system) -> why
        for (m, artifact), why in artifact_failures.items():
            for s in args.systems:
                needs = SYSTEMS[s].needs_onnx if artifact == "onnx" else SYSTEMS[s].needs_ct2
                if needs:
                    for q in args.searches:
                        skipped[(m, q, s)] = {"unavailable": why}
        for m in args.models:
            for q in args.searches:
                if parse_search(q).sample:
                    for s in args.systems:
                        if not SYSTEMS[s].samples:
                            skipped[(m, q, s)] = {"unavailable": "does not sample"}
        dumps = {
            (m, q, s): tmp_dir / m / f"generated_{q}_{s}.npy"
            for m in args.models
            for q in args.searches
            for s in args.systems
        }
        for round_index in range(args.rounds):
            order = args.systems if round_index % 2 == 0 else args.systems[::-1]
            orders.append(list(order))
            for model in args.models:
                for search in args.searches:
                    for system in order:
                        if (model, search, system) in skipped:
                            continue
                        log(f"round {round_index + 1}/{args.rounds}: {model} {search} {system}")
                        # samples are compared with nothing: every system draws its own
                        first = round_index == 0 and not parse_search(search).sample
                        dump = dumps[(model, search, system)] if first else None
                        status, result = run_cell(system, model, search, paths[model], args, dump)
                        if status != "ok":
                            failed = failed or status == "error"
                            # an unavailable system is so for every search of the model
                            for other in args.searches if status == "unavailable" else [search]:
                                skipped[(model, other, system)] = result
                            continue
                        runs[model][search][system].append(result)
                        rates = ", ".join(f"{r:.1f}" for r in result["tokens_per_s"])
                        log(
                            f"  {system}: {rates} tok/s, load {result['load_s']:.2f} s, "
                            f"peak RSS {result['peak_rss_mb']:.0f} MB"
                        )

        ceiling: dict[str, object] = {}
        if args.ceiling:
            log(f"GEMM ceiling, {args.threads} thread(s), {args.ceiling_size}^3")
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker", "ceiling",
                "--threads", str(args.threads),
                "--ceiling-size", str(args.ceiling_size),
                "--ceiling-reps", str(args.ceiling_reps),
                "--seed", str(args.seed),
            ]  # fmt: skip
            run = run_worker_process(cmd, child_env(args.threads))
            if run.returncode != 0 or run.result is None:
                ceiling = {"error": f"exit code {run.returncode}: {run.stderr.strip()[-300:]}"}
                log(f"  ceiling failed: {ceiling['error']}")
            else:
                ceiling = run.result
                log(
                    "  "
                    + ", ".join(
                        f"{p} {ceiling[p]['gflops_median']:.0f} GFLOP/s"
                        for p in ("fp32", "int8")
                        if "gflops_median" in ceiling.get(p, {})
                    )
                )

        for model in args.models:
            for search in args.searches:
                ref_dump = dumps.get((model, search, REFERENCE_SYSTEM))
                if ref_dump is None or not ref_dump.exists():
                    continue
                reference = np.load(ref_dump)
                diversity.setdefault(model, {})[search] = output_diversity(reference)
                for system in args.systems:
                    dump = dumps[(model, search, system)]
                    if system != REFERENCE_SYSTEM and dump.exists():
                        accuracy.setdefault(model, {}).setdefault(search, {})[system] = (
                            compare_outputs(np.load(dump), reference)
                        )

    flops = {
        model: {
            search: generation_flops(
                args.model_specs[model],
                args.sources,
                args.source_len,
                parse_search(search).beams,
                args.new_tokens,
            )
            for search in args.searches
        }
        for model in args.models
    }
    for model in args.models:
        results[model] = {}
        for search in args.searches:
            by_system: dict[str, dict[str, object]] = {}
            for system in args.systems:
                system_runs = runs[model][search][system]
                if system_runs:
                    by_system[system] = summarize(system_runs)
                elif (model, search, system) in skipped:
                    by_system[system] = dict(skipped[(model, search, system)])
            for system, res in by_system.items():
                if "median" not in res:
                    continue
                ref = by_system.get(REFERENCE_SYSTEM, {})
                res["vs_transformers"] = res["median"] / ref["median"] if "median" in ref else None
                baseline = CT2_BASELINE.get(SYSTEMS[system].precision)
                base = by_system.get(baseline, {}) if baseline else {}
                res["ct2_baseline"] = baseline
                res["vs_ct2"] = res["median"] / base["median"] if "median" in base else None
                # GFLOP/s at the median rate: the call's arithmetic over its seconds.
                call_flops = flops[model][search]["total"]
                res["gflops"] = call_flops * res["median"] / (args.sources * args.new_tokens) / 1e9
                res["precision"] = SYSTEMS[system].precision
                rate = ceiling_rate(ceiling, res["precision"])
                res["ceiling_gflops"] = rate
                res["fraction_of_ceiling"] = res["gflops"] / rate if rate else None
            results[model][search] = by_system

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nlpengine": None,
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "tokenizers": package_version("tokenizers"),
        "ctranslate2": package_version("ctranslate2"),
    }
    for by_search in runs.values():
        for by_system in by_search.values():
            for system_runs in by_system.values():
                if system_runs:
                    versions.update(system_runs[0].get("versions", {}))

    report = {
        "benchmark": "seq2seq",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "nlpengine_checkout": git_state(REPO_ROOT),
        "settings": {
            "models": args.models,
            "searches": args.searches,
            "systems": args.systems,
            "system_env": {s: SYSTEMS[s].env for s in args.systems if SYSTEMS[s].env},
            "sources": args.sources,
            "source_len": args.source_len,
            "new_tokens": args.new_tokens,
            "warmup_tokens": min(args.warmup_tokens, args.new_tokens),
            "threads": args.threads,
            "rounds": args.rounds,
            "passes": args.passes,
            "seed": args.seed,
            "round_orders": orders,
            "weights": "random: transformers' initialisation under torch.manual_seed(seed)",
            "metric": "sources * new_tokens / seconds of one batched generate call",
            "ct2_decoding_length": (
                "min_decoding_length = max_decoding_length = new_tokens: CTranslate2 counts "
                "the tokens generated after the decoder start token (start not counted, an "
                "end token counted), like transformers' min/max_new_tokens"
            ),
        },
        "models": model_info,
        "flops": flops,
        "ceiling": ceiling,
        "results": results,
        "accuracy": accuracy,
        "reference_output_diversity": diversity,
    }

    output = Path(args.output)
    write_report(output, report, markdown_report(report), log)
    if failed:
        raise SystemExit("some workers failed; see the report")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options (shared by parent and worker modes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        "--model",
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated models ({', '.join([*MODELS, *MODEL_ALIASES])}) or Hugging "
        "Face layout directories of bart, t5 or marian models with their tokenizer.json",
    )
    parser.add_argument(
        "--searches",
        default="greedy,beam4",
        help="comma-separated: greedy, beamN, topkK (sampling from the K best tokens), "
        "toppP (sampling from the top-P nucleus)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated systems to run (available: {', '.join(SYSTEMS)})",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per system")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--passes", type=int, default=1, help="timed generate calls per worker")
    parser.add_argument("--sources", type=int, default=16, help="sources, all in one batch")
    parser.add_argument("--source-len", type=int, default=256, help="tokens per source")
    parser.add_argument("--new-tokens", type=int, default=64, help="exact new tokens per source")
    parser.add_argument(
        "--warmup-tokens", type=int, default=8, help="new tokens of the warm-up generate call"
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the fp32/int8 GEMM rate at --threads for GFLOP/s utilisation (default: on)",
    )
    parser.add_argument("--ceiling-size", type=int, default=2048, help="n of the n^3 GEMM")
    parser.add_argument("--ceiling-reps", type=int, default=5, help="timed GEMMs per precision")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON report path")
    worker = parser.add_argument_group("internal (worker mode)")
    worker.add_argument("--worker", choices=[*sorted(SYSTEMS), "ceiling"], help=argparse.SUPPRESS)
    worker.add_argument("--model-name", help=argparse.SUPPRESS)
    worker.add_argument("--model-dir", help=argparse.SUPPRESS)
    worker.add_argument("--ct2-model", help=argparse.SUPPRESS)
    worker.add_argument("--onnx-model", help=argparse.SUPPRESS)
    worker.add_argument("--inputs", help=argparse.SUPPRESS)
    worker.add_argument("--search", help=argparse.SUPPRESS)
    worker.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    for name in ("threads", "rounds", "passes", "sources", "source_len", "new_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup_tokens < 1:
        parser.error("--warmup-tokens must be >= 1")
    if args.worker == "ceiling":
        return args
    if args.worker:
        if not (args.model_dir and args.inputs and args.search):
            parser.error("--worker needs --model-dir, --inputs and --search")
        return args

    models, args.model_specs, args.model_dirs = [], {}, {}
    for name in csv_list(args.models):
        if Path(name).is_dir():  # a Hugging Face layout directory
            model_dir = Path(name).resolve()
            if model_dir.name in MODELS or model_dir.name in args.model_specs:
                parser.error(f"model directory name {model_dir.name!r} is taken; rename it")
            args.model_specs[model_dir.name] = spec_from_dir(model_dir)
            args.model_dirs[model_dir.name] = model_dir
            models.append(model_dir.name)
            continue
        for expanded in MODEL_ALIASES.get(name, (name,)):
            if expanded not in MODELS:
                parser.error(
                    f"unknown model {name!r}; available: {', '.join(MODELS)}, tiny, "
                    "or a model directory"
                )
            if expanded not in models:
                models.append(expanded)
                args.model_specs[expanded] = MODELS[expanded]
    args.models = models
    args.systems = csv_list(args.systems)
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown or not args.systems:
        parser.error(f"unknown systems {unknown}; available: {', '.join(SYSTEMS)}")
    args.searches = csv_list(args.searches)
    for search in args.searches:
        try:
            parse_search(search)
        except ValueError as exc:
            parser.error(str(exc))
    if not models or not args.searches:
        parser.error("need at least one model and one search")
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
