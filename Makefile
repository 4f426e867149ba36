# Task runner. `make demo` and `make test` each set up a fresh machine first.
VENV := .venv
PY := $(VENV)/bin/python
CPP_BUILD := build/cpp

.PHONY: demo test setup setup-test build test-cpp test-py test-avx2 lint bench clean

demo: setup  ## set up and run the main job (NER with the built-in model) on the shipped sample
	$(VENV)/bin/engine run --task ner --input examples/ner_sample.jsonl \
	  --output build/ner_sample.entities.jsonl
	@cat build/ner_sample.entities.jsonl

test: setup-test test-cpp test-py test-avx2  ## set up and run every test (ctest and pytest)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh test

build:  ## rebuild and reinstall the package into .venv after C++ changes
	$(PY) -m pip install -q --no-build-isolation --no-deps .

test-cpp:
	cmake -S . -B $(CPP_BUILD) -G Ninja -DNLE_BUILD_TESTS=ON -DNLE_BUILD_PYTHON=OFF \
	  -DPython_EXECUTABLE=$(abspath $(PY)) >/dev/null
	cmake --build $(CPP_BUILD)
	@echo "ctest with each GEMM library (ops/cpu/gemm_library.h): MKL, then oneDNN"
	NLPENGINE_GEMM_LIBRARY=mkl ctest --test-dir $(CPP_BUILD) --output-on-failure
	NLPENGINE_GEMM_LIBRARY=onednn NLPENGINE_ONEDNN_LIBRARY=$(abspath $(VENV))/lib/libdnnl.so.3 \
	  ctest --test-dir $(CPP_BUILD) --output-on-failure

test-py:  # pytest's exit code 5 means it collected nothing: say so and fail
	$(PY) -m pytest tests -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The code an AVX2-only CPU runs, on any machine: the library built without its AVX-512
# kernels (CMake's NLE_AVX2_ONLY) and the GEMM libraries kept to AVX2. ctest under both
# libraries, then the parity and compute-type tests on a module built the same way.
AVX2_ENV := ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
  NLPENGINE_ONEDNN_LIBRARY=$(abspath $(VENV))/lib/libdnnl.so.3
test-avx2:
	cmake -S . -B $(CPP_BUILD)-avx2 -G Ninja -DNLE_BUILD_TESTS=ON -DNLE_BUILD_PYTHON=OFF \
	  -DNLE_AVX2_ONLY=ON -DPython_EXECUTABLE=$(abspath $(PY)) >/dev/null
	cmake --build $(CPP_BUILD)-avx2
	$(AVX2_ENV) NLPENGINE_GEMM_LIBRARY=mkl ctest --test-dir $(CPP_BUILD)-avx2 --output-on-failure
	$(AVX2_ENV) NLPENGINE_GEMM_LIBRARY=onednn ctest --test-dir $(CPP_BUILD)-avx2 --output-on-failure
	$(PY) -m pip install -q --no-deps --no-build-isolation --upgrade --target build/avx2-python \
	  --config-settings=build-dir=build/avx2-python-build \
	  --config-settings=cmake.define.NLE_AVX2_ONLY=ON .
	$(AVX2_ENV) PYTHONPATH=$(abspath build/avx2-python) $(PY) -m pytest -q \
	  tests/parity tests/test_compute_type.py tests/test_bad_input.py; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

lint:
	$(VENV)/bin/ruff check python plugins tests benchmarks scripts
	$(VENV)/bin/ruff format --check python plugins tests benchmarks scripts
	@if command -v clang-format >/dev/null; then \
	  clang-format --dry-run --Werror $$(git ls-files 'cpp/*.cc' 'cpp/*.h'); \
	else echo "lint: clang-format not installed (apt-get install clang-format), C++ not checked"; fi

bench: setup-test  ## encoder throughput (MiniLM, 2 threads; 8-128 and 6-40 tokens) and batch-1 latency (1 and 2 threads; from the loading thread and from another), seq2seq (16 sources, and one)
	$(PY) benchmarks/encoder.py --model-size minilm --mode throughput
	$(PY) benchmarks/encoder.py --model-size minilm --mode throughput --sentences 2048 --min-len 6 --max-len 40 \
	  --output benchmarks/results/encoder-minilm-short-throughput.json
	$(PY) benchmarks/encoder.py --model-size minilm --mode latency --threads 1,2
	$(PY) benchmarks/encoder.py --model-size minilm --mode latency --threads 1,2 --caller thread \
	  --output benchmarks/results/encoder-minilm-latency-thread.json
	$(PY) benchmarks/seq2seq.py
	$(PY) benchmarks/seq2seq.py --sources 1 --output benchmarks/results/seq2seq-one-source.json

clean:
	rm -rf build dist
