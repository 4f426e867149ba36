"""Both benchmark scripts end to end on tiny models, every system, one round.

`make bench` takes most of an hour on the real models, so these runs keep the scripts
working between benchmark runs: each system in its own worker process, the JSON report
and its markdown table, and the accuracy each script records for every system against
its reference. Speeds are only checked to be measured (positive), never compared.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nlpengine
import numpy as np
import pytest
from conftest import benchmark_module, save_tiny_model

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

ENCODER_SYSTEMS = (
    "nlpengine",
    "nlpengine-bf16",
    "nlpengine-int8",
    "nlpengine-int8-mixed",
    "torch",
    "torch-bf16",
    "ct2",
    "ct2-int8",
    "ort",
    "ort-int8",
)
#: Systems whose arithmetic is float32 throughout: within 1e-4 of fp32 torch.
FLOAT32_SYSTEMS = ("nlpengine", "ct2", "ort")
SEQ2SEQ_SYSTEMS = (
    "nlpengine",
    "nlpengine-int8",
    "nlpengine-bf16",
    "nlpengine-int8-mixed",
    "transformers",
    "transformers-bf16",
    "ct2",
    "ct2-int8",
    "ort",
    "ort-int8",
)


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{name} {' '.join(args)} failed:\n{run.stderr[-4000:]}"
    return run


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, minilm_dir) -> Path:
    """A tiny random BERT with MiniLM's vocabulary size, and MiniLM's tokenizer files (the
    benchmark reads the special ids from tokenizer.json; CTranslate2 converts the vocab)."""
    model_dir, _ = save_tiny_model(
        tmp_path_factory.mktemp("bench-encoder"), "bert", vocab_size=30522
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(minilm_dir / name, model_dir / name)
    return model_dir


def check_report_files(json_path: Path, systems: tuple[str, ...]) -> dict:
    report = json.loads(json_path.read_text())
    table = json_path.with_suffix(".md").read_text()
    for system in systems:
        assert f"| {system} |" in table, f"{system} missing from the markdown table"
    return report


def test_encoder_throughput_runs_every_system(tmp_path, encoder_dir):
    out = tmp_path / "encoder.json"
    run_script(
        "encoder.py",
        "--model", str(encoder_dir),
        "--rounds", "1",
        "--sentences", "16",
        "--batch-size", "8",
        "--min-len", "4",
        "--max-len", "24",
        "--no-ceiling",
        "--systems", ",".join(ENCODER_SYSTEMS),
        "--output", str(out),
    )  # fmt: skip
    report = check_report_files(out, ENCODER_SYSTEMS)
    results = report["results"]["2"]
    for system in ENCODER_SYSTEMS:
        assert results[system]["status"] == "ok", (system, results[system])
        assert results[system]["median"] > 0
        assert results[system]["peak_rss_mb_median"] > 0
        # Load to first result: the load and the first call, never less than the load.
        assert results[system]["first_result_s_median"] > results[system]["load_s_median"] > 0
    accuracy = report["accuracy"]
    for system in FLOAT32_SYSTEMS:
        assert accuracy[system]["max_abs_diff_last_hidden_state"] <= 1e-4, (
            system,
            accuracy[system],
        )
    for system in set(ENCODER_SYSTEMS) - set(FLOAT32_SYSTEMS) - {"torch"}:
        # Random tiny weights: every fast mode stays well aligned with float32 torch.
        assert accuracy[system]["min_cosine_mean_pooled"] > 0.95, (system, accuracy[system])
    assert report["settings"]["real_tokens"] < report["settings"]["padded_tokens"]
    assert report["flops"]["per_real_token"] > 0
    # What the fast modes ran on this CPU is recorded with the machine.
    arithmetic = report["machine"]["nlpengine_arithmetic"]
    assert arithmetic["int8"] in ("int8", "int16"), arithmetic
    assert arithmetic["int8-mixed"] in ("int16", "int8+bf16"), arithmetic


@pytest.mark.parametrize("caller", ["main", "thread"])
def test_encoder_latency_runs_at_each_thread_count(tmp_path, encoder_dir, caller):
    """Calls from the loading thread, and from another thread (a service's request thread)."""
    out = tmp_path / "latency.json"
    systems = ("nlpengine", "nlpengine-int8", "torch", "ort")
    run_script(
        "encoder.py",
        "--model", str(encoder_dir),
        "--mode", "latency",
        "--threads", "1,2",
        "--rounds", "1",
        "--calls", "5",
        "--warmup-calls", "2",
        "--check-batches", "4",
        "--caller", caller,
        "--no-ceiling",
        "--systems", ",".join(systems),
        "--output", str(out),
    )  # fmt: skip
    report = check_report_files(out, systems)
    assert report["settings"]["caller"] == caller
    assert ("request thread" in out.with_suffix(".md").read_text()) == (caller == "thread")
    available = nlpengine._core.default_num_threads()
    for threads in ("1", "2"):
        for system in systems:
            result = report["results"][threads][system]
            assert result["status"] == "ok", (threads, system, result)
            assert result["median"] > 0
        # What nlpengine computed on: the threads asked for, at most the CPUs available.
        used = report["results"][threads]["nlpengine"]["info"]["threads_used"]
        assert used == min(int(threads), available), (threads, used)
    assert report["accuracy"]["nlpengine"]["max_abs_diff_last_hidden_state"] <= 1e-4


def test_seq2seq_runs_every_system(tmp_path):
    out = tmp_path / "seq2seq.json"
    run_script(
        "seq2seq.py",
        "--models", "tiny",
        "--searches", "greedy,beam2",
        "--systems", ",".join(SEQ2SEQ_SYSTEMS),
        "--rounds", "1",
        "--sources", "3",
        "--source-len", "12",
        "--new-tokens", "6",
        "--warmup-tokens", "2",
        "--ceiling-size", "256",
        "--output", str(out),
    )  # fmt: skip
    report = check_report_files(out, SEQ2SEQ_SYSTEMS)
    assert report["ceiling"]["fp32"]["gflops_median"] > 0
    for model in ("tiny-bart", "tiny-t5"):
        for search in ("greedy", "beam2"):
            cell = report["results"][model][search]
            for system in SEQ2SEQ_SYSTEMS:
                assert "unavailable" not in cell[system] and "error" not in cell[system], (
                    model,
                    search,
                    system,
                    cell[system],
                )
                assert cell[system]["median"] > 0
                assert cell[system]["gflops"] > 0 and cell[system]["fraction_of_ceiling"] > 0
        # float32 nlpengine and ONNX Runtime generate transformers' tokens.
        for system in ("nlpengine", "ort"):
            greedy = report["accuracy"][model]["greedy"][system]
            assert greedy["sources"] == 3 and greedy["exact_match_fraction"] == 1.0, (
                system,
                greedy,
            )
        graphs = report["models"][model]["onnx_export"]["graphs"]
        for name, graph in graphs.items():
            assert graph["max_abs_diff"] <= 1e-4, (model, name, graph)


def test_seq2seq_samples_with_every_system_that_samples(tmp_path):
    """The sampling searches: every system but ONNX Runtime's numpy loop samples exactly
    --new-tokens tokens; ort is reported as not sampling; samples are compared with
    nothing (each system draws from its own generator)."""
    systems = ("nlpengine", "nlpengine-int8", "transformers", "ct2", "ort")
    out = tmp_path / "seq2seq.json"
    run_script(
        "seq2seq.py",
        "--models", "tiny-bart",
        "--searches", "topk5,topp0.8",
        "--systems", ",".join(systems),
        "--rounds", "1",
        "--sources", "2",
        "--source-len", "12",
        "--new-tokens", "6",
        "--warmup-tokens", "2",
        "--no-ceiling",
        "--output", str(out),
    )  # fmt: skip
    report = check_report_files(out, systems)
    for search, sampling in (
        ("topk5", {"top_k": 5, "top_p": 1.0}),
        ("topp0.8", {"top_k": 0, "top_p": 0.8}),
    ):
        cell = report["results"]["tiny-bart"][search]
        for system in systems[:-1]:
            assert cell[system]["median"] > 0, (search, system, cell[system])
            assert cell[system]["info"]["sampling"] == sampling
        assert cell["ort"] == {"unavailable": "does not sample"}
        assert search not in report["accuracy"].get("tiny-bart", {})


def test_seq2seq_runs_a_directory_with_a_forced_end_token(tmp_path, seq2seq_bench):
    """A directory whose config forces the end token at the last step (real bart-base
    and Marian configs do) still generates exactly --new-tokens tokens in every system
    that reads the config, with transformers' tokens."""
    _, model_dir = generation_model(seq2seq_bench, "marian-dir", tmp_path / "marian")
    assert json.loads((model_dir / "config.json").read_text())["forced_eos_token_id"] == 0
    out = tmp_path / "seq2seq.json"
    run_script(
        "seq2seq.py",
        "--models", str(model_dir),
        "--searches", "greedy,beam2",
        "--systems", "nlpengine,transformers",
        "--rounds", "1",
        "--sources", "3",
        "--source-len", "10",
        "--new-tokens", "5",
        "--warmup-tokens", "2",
        "--no-ceiling",
        "--output", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    for search in ("greedy", "beam2"):
        cell = report["results"]["marian"][search]
        for system in ("nlpengine", "transformers"):
            assert cell[system]["median"] > 0, (search, system, cell[system])
    greedy = report["accuracy"]["marian"]["greedy"]["nlpengine"]
    assert greedy["sources"] == 3 and greedy["exact_match_fraction"] == 1.0, greedy


def test_seq2seq_peers_force_the_first_token_as_transformers_does(tmp_path):
    """A BART directory whose generation_config.json forces the first token (real
    bart-base's does): CTranslate2 (a target prefix) and the ONNX Runtime loop force it
    too, so every float32 system gives transformers' tokens."""
    import json as json_module

    from seq2seq_fixtures import make_tokenizer
    from seq2seq_models import DECISIVE_STD, SEQ2SEQ_CONFIGS, save_seq2seq
    from transformers import GenerationConfig

    model_dir = tmp_path / "bart"
    tokenizer = make_tokenizer("bart")
    config = dict(SEQ2SEQ_CONFIGS["bart"], vocab_size=tokenizer.get_vocab_size())
    save_seq2seq(model_dir, config, 29, std=DECISIVE_STD)
    saved = json_module.loads((model_dir / "config.json").read_text())
    saved["normalize_before"] = False  # bart-base's config says so; CTranslate2 reads it
    (model_dir / "config.json").write_text(json_module.dumps(saved))
    GenerationConfig(
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        decoder_start_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
        bos_token_id=0,
    ).save_pretrained(model_dir)
    tokenizer.save(str(model_dir / "tokenizer.json"))
    out = tmp_path / "seq2seq.json"
    run_script(
        "seq2seq.py",
        "--models", str(model_dir),
        "--searches", "greedy",
        "--systems", "nlpengine,transformers,ct2,ort",
        "--rounds", "1",
        "--sources", "4",
        "--source-len", "10",
        "--new-tokens", "6",
        "--warmup-tokens", "2",
        "--no-ceiling",
        "--output", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    accuracy = report["accuracy"]["bart"]["greedy"]
    for system in ("nlpengine", "ct2", "ort"):
        assert accuracy[system]["exact_match_fraction"] == 1.0, (system, accuracy[system])


def test_encoder_model_without_tokenizer_is_a_clear_error(tmp_path, encoder_dir):
    model_dir = tmp_path / "no-tokenizer"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(encoder_dir / name, model_dir / name)
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / "encoder.py"), "--model", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert f"no tokenizer.json in {model_dir}" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def seq2seq_bench():
    with benchmark_module("seq2seq.py") as module:
        yield module


def generation_model(seq2seq_bench, name: str, out_dir: Path):
    """(spec, directory) of a preset the benchmark builds, or of a directory model:
    "t5-gated-dir" (T5 v1.1's gated-gelu feed-forward), "marian-dir" (a decoder
    feed-forward narrower than the encoder's)."""
    from seq2seq_fixtures import make_tokenizer, save_tiny_summarizer
    from seq2seq_models import SEQ2SEQ_CONFIGS, save_seq2seq

    if name in seq2seq_bench.MODELS:
        seq2seq_bench.build_model(name, out_dir, seed=0)
        return seq2seq_bench.MODELS[name], out_dir
    if name == "t5-gated-dir":
        save_tiny_summarizer(out_dir, "t5")
    else:
        tokenizer = make_tokenizer("t5")
        vocab = tokenizer.get_vocab_size()
        config = dict(
            SEQ2SEQ_CONFIGS["marian"],
            vocab_size=vocab,
            pad_token_id=vocab - 1,
            decoder_start_token_id=vocab - 1,
            decoder_ffn_dim=24,
        )
        save_seq2seq(out_dir, config)
        tokenizer.save(str(out_dir / "tokenizer.json"))
    return seq2seq_bench.spec_from_dir(out_dir), out_dir


@pytest.mark.parametrize("name", ["tiny-bart", "tiny-t5", "t5-gated-dir", "marian-dir"])
def test_generation_flops_count_the_models_own_products(tmp_path, seq2seq_bench, name):
    """generation_flops against the Linear layers of the model transformers builds from
    the same config: encoder products per source token, the cross-attention keys and
    values once per source token, the rest of the decoder and the LM head per row and
    step, plus attention over the source and the past steps."""
    import torch
    import transformers

    spec, model_dir = generation_model(seq2seq_bench, name, tmp_path / name)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    memory_names = ("encoder_attn.k_proj", "encoder_attn.v_proj", "EncDecAttention.k")
    memory_names += ("EncDecAttention.v",)
    encoder = memory = step = 0
    for module_name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        size = module.weight.numel()
        if module_name.startswith(("encoder.", "model.encoder.")):
            encoder += size
        elif module_name.endswith(memory_names):
            memory += size
        else:  # the decoder's other products and the LM head
            step += size
    config = spec.config
    encoder_layers = config.get("encoder_layers", config.get("num_layers"))
    layers = config.get("decoder_layers", config.get("num_decoder_layers"))
    inner = config.get("num_heads", 0) * config.get("d_kv", 0) or config["d_model"]
    sources, source_len, beams, new_tokens = 2, 10, 3, 4
    flops = seq2seq_bench.generation_flops(spec, sources, source_len, beams, new_tokens)
    tokens = sources * source_len
    assert flops["encoder"] == tokens * (2 * encoder + encoder_layers * 4 * source_len * inner)
    assert flops["cross_memory"] == tokens * 2 * memory
    attention = sum(layers * 4 * inner * (t + 1 + source_len) for t in range(new_tokens))
    assert flops["decoder"] == sources * beams * (new_tokens * 2 * step + attention)
    assert flops["total"] == flops["encoder"] + flops["cross_memory"] + flops["decoder"]


@pytest.mark.parametrize("name", ["tiny-bart", "tiny-t5"])
def test_onnx_runtime_search_equals_transformers_generate(tmp_path, seq2seq_bench, name):
    """The ort systems' graphs and numpy search against transformers' generate(): greedy and
    beam search, a padded source among them, the end token suppressed (min = max tokens)."""
    import torch
    import transformers
    from onnx_seq2seq import OnnxSeq2seq, export_seq2seq_onnx

    hf_dir = tmp_path / "hf"
    seq2seq_bench.build_model(name, hf_dir, seed=0)
    # With transformers' initialisation (std 0.02) a tiny model repeats one token; larger
    # weights make the tokens, and the beams' order, change from step to step.
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(hf_dir)).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.5, generator=generator)
    model.save_pretrained(hf_dir)
    info = export_seq2seq_onnx(hf_dir, tmp_path / "onnx")
    assert set(info["graphs"]) == {"encoder", "decoder_first", "decoder_past"}
    ids = seq2seq_bench.build_sources(name, n_sources=4, source_len=20, seed=3)
    mask = np.ones_like(ids)
    mask[2, 14:] = 0
    runner = OnnxSeq2seq(tmp_path / "onnx", threads=1)
    for beams in (1, 3):
        with torch.inference_mode():
            expected = model.generate(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                num_beams=beams,
                min_new_tokens=12,
                max_new_tokens=12,
                do_sample=False,
                length_penalty=1.0,
            )[:, 1:].numpy()
        assert len(np.unique(expected)) >= 4, expected  # the outputs vary
        got = runner.generate(ids, mask, beams, 12)
        np.testing.assert_array_equal(got, expected, err_msg=f"{name}, {beams} beam(s)")


def test_seq2seq_failed_onnx_export_leaves_ort_unavailable(tmp_path, seq2seq_bench, monkeypatch):
    """A model the exporter cannot take: the ort systems are reported unavailable with the
    reason, and the other systems still run."""

    def failing_export(hf_dir, out_dir, quantize=True):
        raise RuntimeError("no export for this model")

    monkeypatch.setattr(seq2seq_bench, "export_seq2seq_onnx", failing_export)
    out = tmp_path / "seq2seq.json"
    args = seq2seq_bench.parse_args(
        [
            "--models", "tiny-t5",
            "--searches", "greedy",
            "--systems", "nlpengine,ort,ort-int8",
            "--rounds", "1",
            "--sources", "2",
            "--source-len", "8",
            "--new-tokens", "3",
            "--warmup-tokens", "1",
            "--no-ceiling",
            "--output", str(out),
        ]
    )  # fmt: skip
    seq2seq_bench.run_parent(args)
    cell = json.loads(out.read_text())["results"]["tiny-t5"]["greedy"]
    assert cell["nlpengine"]["median"] > 0
    for system in ("ort", "ort-int8"):
        assert "no export for this model" in cell[system]["unavailable"], cell[system]


def test_seq2seq_runs_a_model_directory(tmp_path, seq2seq_bench):
    """--models DIR: a Hugging Face layout directory (a tiny gated-gelu T5 with its word-level
    tokenizer) runs as it is, its sources framed as its tokenizer frames a text."""
    from seq2seq_fixtures import save_tiny_summarizer

    model_dir = save_tiny_summarizer(tmp_path / "my-t5", "t5")
    spec = seq2seq_bench.spec_from_dir(model_dir)
    assert (spec.model_type, spec.prefix, spec.suffix) == ("t5", (), (1,))  # "$A </s>"
    sources = seq2seq_bench.build_sources(spec, 3, 10, seed=0)
    assert (sources[:, -1] == 1).all() and not np.isin(sources[:, :-1], [0, 1, 2]).any()

    out = tmp_path / "seq2seq.json"
    systems = ("nlpengine", "transformers", "ct2", "ort")
    run_script(
        "seq2seq.py",
        "--models", str(model_dir),
        "--searches", "greedy,beam2",
        "--systems", ",".join(systems),
        "--rounds", "1",
        "--sources", "3",
        "--source-len", "10",
        "--new-tokens", "5",
        "--warmup-tokens", "2",
        "--no-ceiling",
        "--output", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    for search in ("greedy", "beam2"):
        cell = report["results"]["my-t5"][search]
        for system in ("nlpengine", "transformers", "ort"):
            assert cell[system]["median"] > 0 and cell[system]["gflops"] > 0, (system, cell[system])
        # CTranslate2 runs it or says why not: its converter loads transformers' T5
        # tokenizer, which wants a Unigram vocabulary, not this word-level one.
        assert "median" in cell["ct2"] or "unavailable" in cell["ct2"], cell["ct2"]
    for system in ("nlpengine", "ort"):
        assert report["accuracy"]["my-t5"]["greedy"][system]["exact_match_fraction"] == 1.0


def test_seq2seq_model_directory_without_tokenizer_is_a_clear_error(tmp_path):
    from seq2seq_fixtures import save_tiny_summarizer

    model_dir = save_tiny_summarizer(tmp_path / "no-tokenizer", "bart")
    (model_dir / "tokenizer.json").unlink()
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / "seq2seq.py"), "--models", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert f"no tokenizer.json in {model_dir}" in run.stderr
    assert "Traceback" not in run.stderr
