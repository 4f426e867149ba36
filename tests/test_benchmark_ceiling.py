"""benchmarks/encoder.py's utilisation column: each system's achieved GFLOP/s against the
GEMM ceiling of the precision it multiplies in. nlpengine's int8-mixed runs its value,
attention-output and FFN-output products in bf16 where the CPU has bf16 products (half of
MiniLM's Linear FLOPs), so its ceiling is the rate of that mix: the time of its work with
every part at its own precision's ceiling.
"""

from __future__ import annotations

import numpy as np
import pytest

CEILING = {
    "fp32": {"gflops_median": 200.0},
    "bf16": {"gflops_median": 400.0},
    "int8": {"gflops_median": 800.0},
}


def test_mixed_ceiling_is_the_rate_of_the_mix(encoder_bench):
    from gemm_ceiling import mixed_ceiling_rate

    # Half the FLOPs at 800 and half at 400: 1 / (0.5 / 800 + 0.5 / 400).
    assert mixed_ceiling_rate(CEILING, {"int8": 0.5, "bf16": 0.5}) == pytest.approx(1600 / 3)
    assert mixed_ceiling_rate(CEILING, {"int8": 1.0}) == pytest.approx(800)
    int8_only = {"int8": {"gflops_median": 800.0}}
    assert mixed_ceiling_rate(int8_only, {"int8": 0.5, "bf16": 0.5}) is None


def test_sensitive_flops_are_the_value_output_and_ffn_output_products(encoder_bench):
    dims = {"hidden": 384, "layers": 6, "heads": 12, "intermediate": 1536}
    flops = encoder_bench.encoder_flops(dims, np.array([10, 20]))
    # Per token and layer: V and attention output 2 h^2, FFN output h i (x 2 FLOPs).
    assert flops["sensitive"] == 6 * 2.0 * (2 * 384 * 384 + 384 * 1536) * 30
    assert flops["sensitive"] / flops["linear"] == pytest.approx(0.5)


@pytest.mark.parametrize("shares", [None, {"int8": 0.5, "bf16": 0.5}])
def test_int8_mixed_utilisation_uses_its_mix(encoder_bench, shares):
    by_system = {
        name: {"status": "ok", "speed": 1.0, "gflops": 400.0}
        for name in ("nlpengine-int8", "nlpengine-int8-mixed", "torch")
    }
    encoder_bench.add_ratios(by_system, CEILING, shares)
    assert by_system["nlpengine-int8"]["fraction_of_ceiling"] == pytest.approx(0.5)
    mixed = by_system["nlpengine-int8-mixed"]
    if shares is None:  # int16 products: against the int8 rate, as before
        assert mixed["precision"] == "int8"
        assert mixed["fraction_of_ceiling"] == pytest.approx(0.5)
    else:
        assert mixed["precision"] == "int8+bf16"
        assert mixed["ceiling_gflops"] == pytest.approx(1600 / 3)
        assert mixed["fraction_of_ceiling"] == pytest.approx(0.75)


class _FakeTorch:
    """Just what gemm_ceiling.probe_rate calls: randn(...).to(bfloat16) and matmul, whose
    products take first_seconds the first time and seconds after."""

    bfloat16 = "bfloat16"

    def __init__(self, first_seconds: float, seconds: float):
        self.delays = [first_seconds]
        self.seconds = seconds

    def randn(self, *shape, generator=None):
        class Matrix:
            def to(self, dtype):
                return self

        return Matrix()

    def matmul(self, a, b):
        import time

        time.sleep(self.delays.pop() if self.delays else self.seconds)


def test_bf16_probe_does_not_time_the_kernel_generation(encoder_bench):
    from gemm_ceiling import probe_rate

    # A first product that generates its kernel (0.3 s), then fast ones: measured at full
    # size (None), not taken for a CPU without bf16 kernels.
    assert probe_rate("bf16", _FakeTorch(0.3, 0.0), None) is None
    # Every 512^3 product slow (a scalar loop): the probe's rate, below 10 GFLOP/s.
    slow = probe_rate("bf16", _FakeTorch(0.3, 0.3), None)
    assert slow is not None and slow["gflops_median"] < 10.0
    assert probe_rate("fp32", _FakeTorch(0.3, 0.3), None) is None
