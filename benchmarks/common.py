"""Small helpers shared by benchmark scripts: machine and version info, worker subprocesses.

Used by ``seq2seq.py`` and ``encoder.py``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

RESULT_PREFIX = "{"  # a worker's result is the last stdout line that is a JSON object


def cpu_model() -> str | None:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


#: CPU flags recorded with the machine (the ones float32, bf16 and int8 GEMM kernels
#: dispatch on).
CPU_FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def cpu_flags(wanted: tuple[str, ...] = CPU_FLAGS_OF_INTEREST) -> list[str]:
    """Which of ``wanted`` CPU flags /proc/cpuinfo lists (the ones GEMM kernels dispatch on)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [flag for flag in wanted if flag in flags]
    except OSError:
        pass
    return []


def machine_info() -> dict[str, object]:
    """Describe the machine the benchmark ran on."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    total_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_mb = int(line.split()[1]) / 1024.0
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "nproc": affinity or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "mem_total_mb": total_mb,
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        **nlpengine_runtime(),
    }


def nlpengine_runtime() -> dict:
    """The GEMM library nlpengine's products run on here and how its fast compute types
    multiply on this CPU (asked in a child process, so the benchmark's parent loads no
    runtime): ``nlpengine_gemm_library`` and ``nlpengine_arithmetic``, None where the
    runtime cannot be asked."""
    code = (
        "import json, nlpengine as n; print(json.dumps({'gemm_library': n.gemm_library(), "
        "'arithmetic': {'int8': n.int8_arithmetic(), 'int8-mixed': n.int8_mixed_arithmetic(), "
        "'bf16': n.bf16_arithmetic()}}))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        info = json.loads(proc.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {"nlpengine_gemm_library": None, "nlpengine_arithmetic": None}
    return {
        "nlpengine_gemm_library": info["gemm_library"],
        "nlpengine_arithmetic": info["arithmetic"],
    }


def describe_arithmetic(machine: dict) -> str:
    """The report's words for ``machine["nlpengine_arithmetic"]``: "int8 in int16, ..."."""
    arithmetic = machine.get("nlpengine_arithmetic") or {}
    return ", ".join(f"{t} in {a}" for t, a in arithmetic.items()) or "-"


def package_version(name: str) -> str | None:
    """Installed distribution version, or None (no import, so no side effects)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(repo: Path) -> dict[str, object] | None:
    """Commit and dirty flag of the checkout ``repo`` (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    Linux: VmHWM from /proc/self/status, the high-water mark of this process's own
    memory map. ``ru_maxrss`` is not used there: it survives fork and exec, so a worker
    started by a large parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for worker processes: pinned thread counts, offline HF, ``extra`` on top."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra or {})
    return env


@dataclass
class WorkerRun:
    """What a worker subprocess left: its JSON result (None if it printed none)."""

    result: dict[str, object] | None
    returncode: int
    stderr: str


def run_worker_process(cmd: list[str], env: dict[str, str]) -> WorkerRun:
    """Run ``cmd`` with ``env``, echo its stderr, and parse its last JSON stdout line."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    return WorkerRun(result, proc.returncode, proc.stderr)


def csv_list(value: str) -> list[str]:
    """A comma-separated option as a list, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def write_report(output: Path, report: dict, table: str, log) -> None:
    """The JSON report at ``output``, the markdown table next to it (``.md``), and the
    table on stdout."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    output.with_suffix(".md").write_text(table + "\n")
    log(f"wrote {output} and {output.with_suffix('.md')}")
    print(table)
