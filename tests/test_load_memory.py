"""Loading a model holds no more memory than its compute type needs: a quantized load never
holds a whole float32 weight beside its codes, and a checkpoint stored in F16 or BF16 costs
what its float32 twin does.

A quantized Linear layer is converted at load from the memory-mapped float32 weight. Read
whole, the weight's pages stay resident until the conversion ends: for a tied LM head
(BART-base's is 50,265 x 768, 154 MB) that was the peak of the whole process. The
quantizers read a weight a chunk of rows at a time and give each chunk's mapped pages back
as they finish it (ops/int8_gemm.h, ops/int16_gemm.h).

An F16 or BF16 checkpoint's weights are converted to float32 at load (Weights::require):
each converted copy is packed or quantized at once and freed, the checkpoint's pages given
back, the token tables kept as stored and widened row by row as they are looked up
(ops::embedding), and the buffers the conversion freed trimmed from the pool. Before, an
F16 bart-base took 1,598 MB generating in float32 (762 from its float32 file) and 839 MB
in int8 (274).

A float32 weight is reordered for oneDNN (or packed into panels) a few MB of rows at a time,
each part's pages given back as it is done: reordered whole, a tied LM head's pages stayed
resident beside its reordered copy until the end (bart-base generating: peak RSS 749 MB,
605 after).

A float32 weight rounded to bf16 is read a few MB at a time, each part's pages given back
(bart-base generating in bf16: peak RSS 462 MB, 400 after).

A bf16 weight that oneDNN multiplies is reordered for it at its first use, and its plain
bf16 copy (in pages of its own, outside the buffer pool) freed then: kept, both stayed
(bart-base after one generate call: 542 MB of weights and buffers, 275 after).

A LoRA adapter's weights are merged when a layer asks for them and the base weights' pages
given back once merged: merged at load into the weight store's overlay, the merged copies
and the base pages they were read from stayed resident for the model's lifetime beside the
packed or quantized copies (the default NER adapter, 36 weights of all-MiniLM-L6-v2: 126
MB held after a float32 load and one batch, 36 for the bare base; int8 102 and 11).

Each load runs in its own process and measures the growth of its resident memory: the
peak after the load less the resident size before it (a small model of the same compute
type loaded first, so that the libraries and the CPU probe are already in). Memory, not
time: it does not depend on how loaded the machine is.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nlpengine
import pytest
from seq2seq_models import SEQ2SEQ_CONFIGS, save_seq2seq

# A bart whose tied embedding / LM head dominates the file: 40,000 x 256 float32 = 41 MB.
LARGE_VOCAB = 40_000
LARGE_WIDTH = 256

LOAD_GROWTH = """
import sys, nlpengine

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

small, large, compute_type = sys.argv[1:4]
nlpengine.load(small, compute_type=compute_type, threads=2)
before = status("VmRSS")
model = nlpengine.load(large, compute_type=compute_type, threads=2)
print(status("VmHWM") - before)
"""


@pytest.fixture(scope="module")
def seq2seq_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("load-memory")
    small = root / "small"
    save_seq2seq(small, SEQ2SEQ_CONFIGS["bart"], seed=1)
    large = root / "large"
    config = dict(
        SEQ2SEQ_CONFIGS["bart"],
        vocab_size=LARGE_VOCAB,
        d_model=LARGE_WIDTH,
        encoder_ffn_dim=512,
        decoder_ffn_dim=512,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
    )
    model = save_seq2seq(large, config, seed=2, std=0.05)
    half = root / "large-f16"
    model.half().save_pretrained(half)
    return small, large, half


# Loads `small` (the libraries and the CPU probe), then `large`; a script adds a use of
# `model` and prints the resident memory it then holds beyond `before`.
LOAD_AND_HOLD = """
import sys, numpy as np, nlpengine

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS")

small, large, compute_type = sys.argv[1:4]
nlpengine.load(small, compute_type=compute_type, threads=2)
before = rss()
model = nlpengine.load(large, compute_type=compute_type, threads=2)
"""

HELD_AFTER_GENERATION = (
    LOAD_AND_HOLD
    + """
ids = np.arange(3, 3 + 2 * 40).reshape(2, 40) % 1000 + 3
model.generate(ids, np.ones_like(ids), max_new_tokens=3, min_new_tokens=3)
print(rss() - before)
"""
)


def load_growth(small, large, compute_type: str, arithmetic: str, script: str = LOAD_GROWTH) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", script, str(small), str(large), compute_type],
        env={**os.environ, "NLPENGINE_INT8_ARITHMETIC": arithmetic},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.parametrize(
    ("compute_type", "arithmetic"),
    [("int8", "int8"), ("int8", "int16"), ("int8-mixed", "int16")],
)
def test_quantized_load_does_not_hold_the_float32_head(seq2seq_dirs, compute_type, arithmetic):
    small, large, _ = seq2seq_dirs
    head_bytes = LARGE_VOCAB * LARGE_WIDTH * 4
    growth = load_growth(small, large, compute_type, arithmetic)
    print(
        f"{compute_type} ({arithmetic} products, int8 here: {nlpengine.int8_arithmetic()}): "
        f"resident memory grew {growth / 2**20:.1f} MB loading a model whose float32 head "
        f"is {head_bytes / 2**20:.1f} MB"
    )
    # What the load keeps is the codes of every weight (8 bits a weight: a quarter of the
    # head) and, for a moment, the head's unpacked codes while they are packed for the
    # GEMM library and a chunk of its float32 rows: 0.44-0.56 of the head on an AVX2-only
    # AMD EPYC. Holding all the head's float32 pages beside its codes takes it past the
    # head's own size (1.55-1.82 there before the quantizers gave the pages back).
    assert growth < head_bytes


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_a_half_precision_checkpoint_holds_what_its_float32_twin_does(seq2seq_dirs, compute_type):
    small, large, half = seq2seq_dirs
    arithmetic = nlpengine.int8_arithmetic()
    held = {
        name: load_growth(small, path, compute_type, arithmetic, HELD_AFTER_GENERATION)
        for name, path in (("float32", large), ("float16", half))
    }
    print(
        f"{compute_type}: resident after load and generation, float32 checkpoint "
        f"{held['float32'] / 2**20:.1f} MB, float16 {held['float16'] / 2**20:.1f} MB"
    )
    # Converted weights kept beside their packed copies, or the F16 file's pages, or the
    # token tables widened to float32: any of them alone takes it past this.
    assert held["float16"] < 1.15 * held["float32"] + 4 * 2**20


def test_a_bf16_load_holds_its_weights_once(seq2seq_dirs):
    small, large, _ = seq2seq_dirs
    arithmetic = nlpengine.int8_arithmetic()
    held = {
        compute_type: load_growth(small, large, compute_type, arithmetic, HELD_AFTER_GENERATION)
        for compute_type in ("float32", "bf16")
    }
    print(
        f"bf16 products in {nlpengine.bf16_arithmetic()}: resident after load and generation, "
        f"float32 {held['float32'] / 2**20:.1f} MB, bf16 {held['bf16'] / 2**20:.1f} MB"
    )
    if nlpengine.bf16_arithmetic() == "bf16":
        # Two bytes a weight: half of float32's. The plain bf16 copies kept beside the
        # library's reordered ones (as until 2026-12-07) take it to float32's size.
        assert held["bf16"] < 0.75 * held["float32"]
    else:
        # No bf16 products here: the weights rounded to bf16 are kept in float32, packed
        # once as float32's are.
        assert held["bf16"] < 1.15 * held["float32"] + 4 * 2**20


PEAK_AND_HELD_AFTER_GENERATION = (
    LOAD_AND_HOLD
    + """
ids = np.arange(3, 3 + 2 * 40).reshape(2, 40) % 1000 + 3
model.generate(ids, np.ones_like(ids), max_new_tokens=3, min_new_tokens=3)
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(peak - before, rss() - before)
"""
)


@pytest.mark.parametrize("compute_type", ["float32", "bf16"])
def test_packing_a_head_does_not_hold_its_float32_pages(seq2seq_dirs, compute_type):
    small, large, _ = seq2seq_dirs
    head_bytes = LARGE_VOCAB * LARGE_WIDTH * 4
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_AND_HELD_AFTER_GENERATION,
            str(small),
            str(large),
            compute_type,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    peak, held = (int(v) for v in proc.stdout.split()[-2:])
    library = nlpengine.gemm_library()
    print(
        f"{compute_type} ({library}, bf16 products in {nlpengine.bf16_arithmetic()}): "
        f"after load and generation, peak {peak / 2**20:.1f} MB, held {held / 2**20:.1f} MB; "
        f"the float32 head is {head_bytes / 2**20:.1f} MB"
    )
    if library.startswith("MKL"):
        # MKL packs a weight whole, into a layout of its own: the head's pages stay resident
        # until its packed copy is made.
        assert peak < held + 1.25 * head_bytes
    elif compute_type == "float32":
        # Reordered (oneDNN) or packed (panels) a few MB of rows at a time, each part's
        # pages given back: reordered whole, the head's pages stayed beside its reordered
        # copy until it was done: peak 87.2 MB, held 48.6 (Zen 4 host; 52.5 and 48.6 in parts).
        assert peak < held + head_bytes / 2
    elif nlpengine.bf16_arithmetic() == "bf16":
        # Rounded to bf16 a few MB at a time, each part's float32 pages given back, then the
        # bf16 copy reordered and freed: a moment of the head's bf16 copy beside its
        # reordered one (Zen 4 host: peak 46.5 MB, held 27.6). Rounded whole, the float32
        # pages stayed beside the bf16 copy: the whole head more.
        assert peak < held + 0.75 * head_bytes
    else:
        # No bf16 products: the head rounded to bf16, then widened back to float32 and
        # packed as float32's, each copy freed when the next is made.
        assert peak < held + 1.75 * head_bytes


HELD_AFTER_ENCODING = (
    LOAD_AND_HOLD
    + """
ids = np.arange(4 * 32).reshape(4, 32) % 1000 + 1000
model.encode(ids, np.ones_like(ids))
print(rss() - before)
"""
)


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_an_adapter_holds_what_its_base_does(minilm_dir, tiny_bert_dir, compute_type):
    from nlpengine.plugins import get_registry

    adapter_dir = get_registry().task("ner").default_model()
    assert (adapter_dir / "adapter_config.json").is_file()
    arithmetic = nlpengine.int8_arithmetic()
    held = {
        name: load_growth(tiny_bert_dir, path, compute_type, arithmetic, HELD_AFTER_ENCODING)
        for name, path in (("base", minilm_dir), ("adapter", adapter_dir))
    }
    # The adapter's targets: every Linear of the 6 layers (query, key, value, the three
    # dense), 10.6 M float32 weights.
    merged_bytes = 6 * (4 * 384 * 384 + 2 * 384 * 1536) * 4
    print(
        f"{compute_type}: resident after load and one batch, base {held['base'] / 2**20:.1f} MB, "
        f"with the adapter {held['adapter'] / 2**20:.1f} MB ({merged_bytes / 2**20:.1f} MB merged)"
    )
    # The merged copies, or the base pages they were read from, kept: either alone takes
    # it past this.
    assert held["adapter"] < held["base"] + merged_bytes / 4
