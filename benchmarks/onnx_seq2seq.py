"""ONNX Runtime as a peer of the seq2seq benchmark: the export and the decoding loop.

transformers' encoder-decoder model is exported (``torch.onnx.export(dynamo=True)``,
so that decoding positions and T5's relative buckets follow the cache length instead of
being traced as constants) into three graphs, as Hugging Face Optimum splits them:

- ``encoder.onnx``: input_ids, attention_mask -> last_hidden_state;
- ``decoder_first.onnx``: the decoder start token over the encoder's states -> the
  first step's candidates and, per layer, the self-attention keys and values of that
  step and the cross-attention keys and values of the source (computed once);
- ``decoder_past.onnx``: one token per row with the cache of the steps before it ->
  the step's candidates and the self-attention cache grown by one position.

Both decoder graphs end in ``log_softmax`` and ``TopK`` over the vocabulary, K taken
from the length of their ``k`` input, so that the loop in Python handles (rows, K)
arrays, never (rows, vocabulary) ones: a log-softmax and top-k in numpy over 64 rows of
BART's 50,265 logits cost ~27 ms a step, as much as ONNX Runtime's whole step. Cache
tensors are one graph input and output per layer and kind, as Optimum's are: a stacked
cache would be copied by the slice that takes a layer out of it.

``quantize_dynamic`` (int8 weights, per output channel, as the encoder benchmark's
ONNX Runtime int8 system) writes an ``*_int8.onnx`` beside each graph.

:class:`OnnxSeq2seq` runs the benchmark's workload: greedy or beam search with exactly
``new_tokens`` new tokens per source, the end token suppressed throughout (the
benchmark's ``min_new_tokens = max_new_tokens``), the first token forced where the
model's generation config forces one (``forced_bos_token_id``), scored like transformers'
``generate``: log-softmax over the whole vocabulary, then the end token removed, beams
ranked by their summed log-probabilities. It is not a general ``generate`` (no end of
sequence, no length penalty, no sampling).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

GRAPHS = ("encoder", "decoder_first", "decoder_past")
CACHE_KINDS = ("self_key", "self_value", "cross_key", "cross_value")


def decoder_layers(config) -> int:
    """Decoder layers of a transformers config (BART/Marian ``decoder_layers``, T5's own)."""
    for name in ("decoder_layers", "num_decoder_layers", "num_layers"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"no decoder layer count in {type(config).__name__}")


@contextlib.contextmanager
def _quiet(*names: str):
    """Loggers ``names`` at ERROR for the block: the exporter warns, once per graph, that
    torchvision's operators are not registered, and quantize_dynamic suggests a
    pre-processing step."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _cache_names(prefix: str, layers: int, kinds: tuple[str, ...]) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in kinds]


def export_seq2seq_onnx(hf_dir: Path, out_dir: Path, quantize: bool = True) -> dict[str, object]:
    """Export ``hf_dir`` (a transformers encoder-decoder) into the three graphs; check them.

    Each graph is run once with ONNX Runtime on an example batch against the PyTorch
    module it came from (``max_abs_diff`` in the returned info), the decoder_past graph
    two steps on, so that a cache length traced as a constant would show.
    """
    import onnxruntime as ort
    import torch
    import transformers
    from transformers.cache_utils import EncoderDecoderCache

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    ort.set_default_logger_severity(3)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
        str(hf_dir), dtype=torch.float32, local_files_only=True
    ).eval()
    config = model.config
    layers = decoder_layers(config)
    d_model = int(config.d_model)

    def candidates(logits: torch.Tensor, k: torch.Tensor):
        logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
        return torch.topk(logprobs, k.shape[0], dim=-1)

    class EncoderGraph(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            encoder = self.inner.get_encoder()
            return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    class DecoderFirstGraph(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, decoder_input_ids, encoder_hidden_states, attention_mask, k):
            out = self.inner(
                encoder_outputs=(encoder_hidden_states,),
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                use_cache=True,
            )
            values, ids = candidates(out.logits, k)
            cache = out.past_key_values
            flat = []
            for i in range(layers):
                own, cross = (
                    cache.self_attention_cache.layers[i],
                    cache.cross_attention_cache.layers[i],
                )
                flat += [own.keys, own.values, cross.keys, cross.values]
            return (values, ids, *flat)

    class DecoderPastGraph(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, decoder_input_ids, attention_mask, k, *past):
            cache = EncoderDecoderCache(
                tuple(tuple(past[4 * i : 4 * i + 4]) for i in range(layers))
            )
            # The cross-attention keys and values are in the cache; the encoder states are
            # only looked at for their shape (batch, source length).
            states = past[2][:, 0, :, :1].expand(-1, -1, d_model)
            out = self.inner(
                encoder_outputs=(states,),
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                cache=cache,
                use_cache=True,
            )
            values, ids = candidates(out.logits, k)
            own = out.past_key_values.self_attention_cache
            flat = []
            for i in range(layers):
                flat += [own.layers[i].keys, own.layers[i].values]
            return (values, ids, *flat)

    start_id = int(config.decoder_start_token_id)
    rows, source_len, k_example = 3, 12, 3
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(
        4, int(config.vocab_size) - 1, (rows, source_len), generator=generator
    )
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    k = torch.zeros(k_example)
    start = torch.full((rows, 1), start_id, dtype=torch.int64)
    b, t, s, kd = (
        torch.export.Dim("batch"),
        torch.export.Dim("source"),
        torch.export.Dim("past"),
        torch.export.Dim("k", min=1),
    )
    info: dict[str, object] = {"exporter": "torch.onnx.export(dynamo=True)", "graphs": {}}

    encoder, first, past_graph = (
        EncoderGraph(model),
        DecoderFirstGraph(model),
        DecoderPastGraph(model),
    )
    with torch.no_grad():
        states = encoder(input_ids, attention_mask)
        first_out = first(start, states, attention_mask, k)
        # Two steps with the cache, so that the example's past length is 2, not 1 (an
        # example dimension of 1 would be specialised).
        past = list(first_out[2:])
        token = first_out[1][:, :1]
        step_out = past_graph(token, attention_mask, k, *past)
        grown = list(step_out[2:])
        for i in range(layers):
            past[4 * i], past[4 * i + 1] = grown[2 * i], grown[2 * i + 1]
        token2 = step_out[1][:, :1]
        past_example = (token2, attention_mask, k, *past)
        expected_past = past_graph(*past_example)

    first_cache = _cache_names("present", layers, CACHE_KINDS)
    past_inputs = _cache_names("past", layers, CACHE_KINDS)
    past_outputs = _cache_names("present", layers, CACHE_KINDS[:2])
    cache_dims = {0: b, 2: s}
    cross_dims = {0: b, 2: t}
    specs = {
        "encoder": (
            encoder,
            (input_ids, attention_mask),
            ["input_ids", "attention_mask"],
            ["last_hidden_state"],
            ({0: b, 1: t}, {0: b, 1: t}),
            states,
        ),
        "decoder_first": (
            first,
            (start, states, attention_mask, k),
            ["decoder_input_ids", "encoder_hidden_states", "attention_mask", "k"],
            ["logprobs", "token_ids", *first_cache],
            ({0: b}, {0: b, 1: t}, {0: b, 1: t}, {0: kd}),
            first_out,
        ),
        "decoder_past": (
            past_graph,
            past_example,
            ["decoder_input_ids", "attention_mask", "k", *past_inputs],
            ["logprobs", "token_ids", *past_outputs],
            (
                {0: b},
                {0: b, 1: t},
                {0: kd},
                # the *past arguments, one structure for all of them
                tuple(
                    cache_dims if kind.startswith("self") else cross_dims
                    for _ in range(layers)
                    for kind in CACHE_KINDS
                ),
            ),
            expected_past,
        ),
    }
    for name, (module, example, input_names, output_names, dynamic, expected) in specs.items():
        start_s = time.perf_counter()
        path = out_dir / f"{name}.onnx"
        with warnings.catch_warnings(), torch.no_grad(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {n: x.numpy() for n, x in zip(input_names, example, strict=True)}
        got = session.run(None, feeds)
        want = expected if isinstance(expected, tuple) else (expected,)
        # Token ids may swap places between near-equal log-probabilities; compare values.
        diffs = [
            float(np.abs(g - w.numpy()).max())
            for g, w, out_name in zip(got, want, output_names, strict=True)
            if out_name != "token_ids"
        ]
        info["graphs"][name] = {
            "export_s": time.perf_counter() - start_s,
            "max_abs_diff": max(diffs),
            "file_mb": path.stat().st_size / 2**20 + _data_mb(path),
        }
        del session
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _quiet(""):
            for name in GRAPHS:
                start_s = time.perf_counter()
                quantize_dynamic(
                    str(out_dir / f"{name}.onnx"),
                    str(out_dir / f"{name}_int8.onnx"),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                )
                info["graphs"][name]["quantize_s"] = time.perf_counter() - start_s
        info["quantize"] = "quantize_dynamic(graph, weight_type=QuantType.QInt8, per_channel=True)"
    (out_dir / "generation.json").write_text(
        json.dumps(
            {
                "decoder_start_token_id": start_id,
                "eos_token_id": int(config.eos_token_id),
                "decoder_layers": layers,
                # transformers forces this first token (generation_config.json), so does the
                # loop here.
                "forced_bos_token_id": model.generation_config.forced_bos_token_id,
            }
        )
    )
    del model, encoder, first, past_graph
    gc.collect()
    return info


def _data_mb(path: Path) -> float:
    """Size of an ONNX file's external data beside it, if the exporter wrote one."""
    data = path.with_name(path.name + ".data")
    return data.stat().st_size / 2**20 if data.exists() else 0.0


class OnnxSeq2seq:
    """The three graphs in ONNX Runtime sessions and the benchmark's decoding loop."""

    def __init__(self, onnx_dir: Path, threads: int, suffix: str = "") -> None:
        import onnxruntime as ort

        meta = json.loads((onnx_dir / "generation.json").read_text())
        self.start_id = int(meta["decoder_start_token_id"])
        self.eos_id = int(meta["eos_token_id"])
        self.layers = int(meta["decoder_layers"])
        forced = meta.get("forced_bos_token_id")
        self.forced_bos_id = None if forced is None else int(forced)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.sessions = {
            name: ort.InferenceSession(
                str(onnx_dir / f"{name}{suffix}.onnx"), options, providers=["CPUExecutionProvider"]
            )
            for name in GRAPHS
        }
        self.past_inputs = _cache_names("past", self.layers, CACHE_KINDS)
        self.info = {
            "versions": {"onnxruntime": ort.__version__},
            "graphs": [f"{name}{suffix}.onnx" for name in GRAPHS],
            "intra_op_num_threads": threads,
            "inter_op_num_threads": 1,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "search": "numpy loop over the graphs' top-k candidates (exactly new_tokens tokens)",
        }

    def generate(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, beams: int, new_tokens: int
    ) -> np.ndarray:
        """(sources, new_tokens) ids: the best beam of each source, the end token never chosen."""
        sources = input_ids.shape[0]
        input_ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
        # Candidates per row: one spare, for an end token among them that is dropped.
        k = np.zeros(beams + 1, dtype=np.float32)
        states = self.sessions["encoder"].run(
            ["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask}
        )[0]
        start = np.full((sources, 1), self.start_id, dtype=np.int64)
        out = self.sessions["decoder_first"].run(
            None,
            {
                "decoder_input_ids": start,
                "encoder_hidden_states": states,
                "attention_mask": mask,
                "k": k,
            },
        )
        logprobs, token_ids, cache = out[0], out[1], out[2:]
        # The first step is the same for every beam of a source (transformers runs it on
        # beams copies and keeps one through its -1e9 scores); here it runs once per source
        # and the cache is copied to the beams after it.
        if self.forced_bos_id is None:
            scores, tokens = self._best(logprobs, token_ids, beams)
        else:
            # transformers' forced BOS: the token's score is 0, every other -inf; of a
            # source's beams only the first is alive at this step (the rest at -1e9).
            tokens = np.full((sources, beams), self.forced_bos_id, dtype=np.int64)
            scores = np.full((sources, beams), -1e9, dtype=np.float32)
            scores[:, 0] = 0.0
        if beams > 1:
            cache = [np.repeat(c, beams, axis=0) for c in cache]
            mask = np.repeat(mask, beams, axis=0)
        scores = scores.reshape(-1)
        sequences = tokens.reshape(-1, 1)
        feeds = dict(zip(self.past_inputs, cache, strict=True))
        feeds["attention_mask"] = mask
        feeds["k"] = k
        past = self.sessions["decoder_past"]
        for _ in range(1, new_tokens):
            feeds["decoder_input_ids"] = np.ascontiguousarray(sequences[:, -1:])
            out = past.run(None, feeds)
            logprobs, token_ids = out[0], out[1]
            candidates = scores[:, None] + logprobs  # (rows, K)
            step_scores, chosen = self._best(candidates, token_ids, beams, grouped=True)
            parent_rows, tokens = chosen
            if beams > 1:
                sequences = sequences[parent_rows]
            sequences = np.concatenate([sequences, tokens[:, None]], axis=1)
            scores = step_scores
            for i in range(self.layers):
                for j, kind in enumerate(CACHE_KINDS[:2]):
                    grown = out[2 + 2 * i + j]
                    feeds[f"past.{i}.{kind}"] = grown if beams == 1 else grown[parent_rows]
        return sequences[::beams]

    def _best(self, logprobs: np.ndarray, token_ids: np.ndarray, beams: int, grouped: bool = False):
        """The ``beams`` best candidates that are not the end token.

        First step (``grouped`` False): (sources, K) candidates of one row per source ->
        (sources, beams) scores and tokens. Later steps: (sources x beams, K) candidates,
        already summed with their beam's score, ranked per source -> (rows,) scores and
        (parent rows, tokens) with each source's beams best first.
        """
        logprobs = np.where(token_ids == self.eos_id, -np.inf, logprobs)
        if not grouped:
            order = np.argsort(-logprobs, axis=1, kind="stable")[:, :beams]
            return np.take_along_axis(logprobs, order, 1), np.take_along_axis(token_ids, order, 1)
        rows, width = logprobs.shape
        sources = rows // beams
        flat = logprobs.reshape(sources, beams * width)
        order = np.argsort(-flat, axis=1, kind="stable")[:, :beams]
        scores = np.take_along_axis(flat, order, 1).reshape(-1)
        parent = (order // width + np.arange(sources)[:, None] * beams).reshape(-1)
        tokens = np.take_along_axis(token_ids.reshape(sources, beams * width), order, 1).reshape(-1)
        return scores, (parent, tokens)
