"""The measured GEMM ceiling both benchmarks report utilisation against.

A worker process of either script measures it (``--worker ceiling``) with the same
threads as the systems: torch's float32, bfloat16 and int8 products, and oneDNN's
float32 and u8·s8 products where its library is installed (torch's go through MKL,
slow on non-Intel CPUs).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np


def measure_ceiling(threads: int, n: int, reps: int, seed: int) -> dict[str, object]:
    """The GEMM rates (GFLOP/s) of this process at ``threads`` threads: fp32, bf16, int8.

    n x n x n products: ``torch.matmul`` in float32 and bfloat16 and
    ``torch._int_mm`` (int8 x int8 -> int32); two warm-up calls, then the
    median of ``reps`` timed calls, 2 n^3 FLOPs each. Where oneDNN is installed its
    float32 and u8·s8 products are measured too and the faster rate is the ceiling.
    """
    import torch

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    result: dict[str, object] = {
        "system": "ceiling",
        "threads": threads,
        "size": n,
        "reps": reps,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }
    for precision in ("fp32", "bf16", "int8"):
        try:
            if precision == "int8":
                a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator)
                b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator)
                op_name = "torch._int_mm(int8, int8) -> int32"

                def op(a=a, b=b):
                    return torch._int_mm(a, b)

            else:
                dtype = torch.float32 if precision == "fp32" else torch.bfloat16
                a = torch.randn(n, n, generator=generator).to(dtype)
                b = torch.randn(n, n, generator=generator).to(dtype)
                op_name = f"torch.matmul({dtype}, {dtype})"

                def op(a=a, b=b):
                    return torch.matmul(a, b)

            with torch.inference_mode():
                probe = probe_rate(precision, torch, generator)
                if probe is not None:  # no fast kernel: n^3 would take minutes
                    result[precision] = probe
                    continue
                op()
                op()
                seconds = []
                for _ in range(reps):
                    start = time.perf_counter()
                    op()
                    seconds.append(time.perf_counter() - start)
            rates = [2.0 * n**3 / s / 1e9 for s in seconds]
            result[precision] = {
                "op": op_name,
                "gflops_median": statistics.median(rates),
                "gflops_per_rep": rates,
            }
        except Exception as exc:  # an op this torch build lacks must not hide the others
            result[precision] = {"error": repr(exc)}
    # torch's float32 and int8 products go through MKL, whose kernels are slow on non-Intel
    # CPUs; the ceiling is the faster of torch and oneDNN where oneDNN is installed.
    for precision, entry in onednn_gemm_rates(n, reps, seed).items():
        best = result.get(precision, {})
        result[f"{precision}_onednn"] = entry
        if entry.get("gflops_median", 0.0) > best.get("gflops_median", 0.0):
            result[precision] = entry
    return result


def probe_rate(precision: str, torch, generator) -> dict[str, object] | None:
    """torch's bf16 rate from one 512^3 product after a first one, when it is below 10
    GFLOP/s (no bf16 kernel for the CPU: a scalar loop at well under 1 GFLOP/s, where one
    2048^3 product takes about a minute); else None, and the caller measures at full size.
    The first product is not timed: it includes generating the kernel (on the Zen 4 host,
    with AVX512-BF16, one first product timed gave 5.4 GFLOP/s, and the bf16 ceiling was
    taken for the fp32 one)."""
    if precision != "bf16":
        return None
    n = 512
    a = torch.randn(n, n, generator=generator).to(torch.bfloat16)
    b = torch.randn(n, n, generator=generator).to(torch.bfloat16)
    torch.matmul(a, b)
    start = time.perf_counter()
    torch.matmul(a, b)
    rate = 2.0 * n**3 / (time.perf_counter() - start) / 1e9
    if rate >= 10.0:
        return None
    return {
        "op": f"torch.matmul(torch.bfloat16, torch.bfloat16), one {n}^3 product after one",
        "gflops_median": rate,
        "gflops_per_rep": [rate],
    }


def onednn_gemm_rates(n: int, reps: int, seed: int) -> dict[str, dict[str, object]]:
    """oneDNN's float32 and u8·s8→s32 n^3 product rates (GFLOP/s), through its C API with
    ctypes, when the ``onednn-cpu-gomp`` package's library is installed; else {}."""
    import ctypes

    path = Path(sys.prefix) / "lib" / "libdnnl.so.3"
    if not path.exists():
        return {}
    lib = ctypes.CDLL(str(path))
    i64, f32, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
    lib.dnnl_sgemm.argtypes = [ctypes.c_char, ctypes.c_char, i64, i64, i64, f32, ptr, i64,
                               ptr, i64, f32, ptr, i64]  # fmt: skip
    lib.dnnl_gemm_u8s8s32.argtypes = [ctypes.c_char, ctypes.c_char, ctypes.c_char, i64, i64, i64,
                                      f32, ptr, i64, ctypes.c_uint8, ptr, i64, ctypes.c_int8, f32,
                                      ptr, i64, ptr]  # fmt: skip
    rng = np.random.default_rng(seed)
    a32, b32 = rng.standard_normal((2, n, n), dtype=np.float32)
    c32 = np.empty((n, n), np.float32)
    a8 = rng.integers(0, 256, (n, n), dtype=np.uint8)
    b8 = rng.integers(-127, 128, (n, n), dtype=np.int8)
    c8 = np.empty((n, n), np.int32)
    offset = np.zeros(1, np.int32)

    def p(x: np.ndarray) -> int:
        return x.ctypes.data

    ops = {
        "fp32": ("dnnl_sgemm(f32, f32)",
                 lambda: lib.dnnl_sgemm(b"N", b"N", n, n, n, 1.0, p(a32), n, p(b32), n, 0.0,
                                        p(c32), n)),
        "int8": ("dnnl_gemm_u8s8s32(u8, s8) -> s32",
                 lambda: lib.dnnl_gemm_u8s8s32(b"N", b"N", b"F", n, n, n, 1.0, p(a8), n, 0, p(b8),
                                               n, 0, 0.0, p(c8), n, p(offset))),
    }  # fmt: skip
    out: dict[str, dict[str, object]] = {}
    for precision, (name, op) in ops.items():
        op()
        op()
        seconds = []
        for _ in range(reps):
            start = time.perf_counter()
            status = op()
            seconds.append(time.perf_counter() - start)
        if status != 0:
            out[precision] = {"error": f"{name} returned status {status}"}
            continue
        rates = [2.0 * n**3 / t / 1e9 for t in seconds]
        out[precision] = {
            "op": name,
            "gflops_median": statistics.median(rates),
            "gflops_per_rep": rates,
        }
    return out


def ceiling_rate(ceiling: dict[str, object] | None, precision: str) -> float | None:
    """The GEMM ceiling (GFLOP/s) a system of ``precision`` is measured against.

    A bf16 product can always be run by widening to float32 (MKL and oneDNN do
    so on CPUs without bf16 instructions, where torch's bf16 matmul falls back
    to a scalar loop at well under 1 GFLOP/s), so the bf16 ceiling is the
    faster of the bf16 and float32 rates.
    """
    rates = {p: (ceiling or {}).get(p, {}).get("gflops_median") for p in ("fp32", precision)}
    if precision == "bf16" and rates["fp32"]:
        return max(rates["bf16"] or 0.0, rates["fp32"])
    return rates[precision]


def mixed_ceiling_rate(ceiling: dict[str, object] | None, shares: dict[str, float]) -> float | None:
    """The ceiling of work split between precisions: ``shares`` maps a precision to the share
    of the FLOPs run in it, and the work at every part's ceiling takes
    sum(share / ceiling_rate(precision)) seconds per FLOP."""
    seconds_per_flop = 0.0
    for precision, share in shares.items():
        rate = ceiling_rate(ceiling, precision)
        if not rate:
            return None
        seconds_per_flop += share / rate
    return 1.0 / seconds_per_flop if seconds_per_flop else None
