"""Loading a model with a quantized compute type never holds a whole float32 weight in
memory beside its codes.

A quantized Linear layer is converted at load from the memory-mapped float32 weight. Read
whole, the weight's pages stay resident until the conversion ends: for a tied LM head
(BART-base's is 50,265 x 768, 154 MB) that was the peak of the whole process. The
quantizers read a weight a chunk of rows at a time and give each chunk's mapped pages back
as they finish it (ops/int8_gemm.h, ops/int16_gemm.h).

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
    save_seq2seq(large, config, seed=2, std=0.05)
    return small, large


def load_growth(small, large, compute_type: str, arithmetic: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_GROWTH, str(small), str(large), compute_type],
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
    small, large = seq2seq_dirs
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
