# ffrepro -- build, test, benchmark and demo entry points.
# `make demo` and `make test` work on a fresh Debian machine: both install what they need.

SWIFT      ?= swift
CONFIG     ?= release
BIN        := .build/$(CONFIG)/repro
DATA       ?= data
THREADS    ?=
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# System packages (Debian names). apt runs only when one of them is missing.
APT_PACKAGES := pkg-config libopenblas-dev libhdf5-dev hdf5-tools libpng-dev libjpeg-dev \
                libopenmpi-dev openmpi-bin
DEMO_PACKAGES := dataset-fashion-mnist

.PHONY: setup setup-demo build test bench bench-torch demo fuzz clean checkpoints-check

setup:
	@bash tools/apt-ensure.sh $(APT_PACKAGES)

setup-demo: setup
	@bash tools/apt-ensure.sh $(DEMO_PACKAGES)

build: setup
	$(SWIFT) build -c $(CONFIG) --product repro

# XCTest only: the suite has no swift-testing tests, and that runner would end the output
# with "Test run with 0 tests". SwiftPM leaves TemporaryDirectory.* folders in $$TMPDIR on
# every `swift test`, so it gets a private one that is removed afterwards (the tests clean
# up their own folders; see Tests/TestScratch). tools/test-summary.sh prints failures,
# skips and totals; the whole output goes to .build/test.log (TEST_VERBOSE=1 prints it all).
test: setup
	$(SWIFT) build --build-tests
	@rm -rf .build/test-tmp && mkdir -p .build/test-tmp
	@TMPDIR=$(CURDIR)/.build/test-tmp $(if $(TEST_VERBOSE),,bash tools/test-summary.sh) \
	    $(SWIFT) test --skip-build --disable-swift-testing; \
	    rc=$$?; rm -rf .build/test-tmp; exit $$rc

# Fuzz every decoder and parser (libFuzzer + ASan when available); FUZZ_SECONDS per target.
fuzz: setup
	SWIFT=$(SWIFT) bash fuzz/run.sh

bench: build
	$(BIN) bench $(if $(THREADS),--threads $(THREADS),)

# ffrepro against the same step in PyTorch (tools/bench/torch_step.py), alternating rounds.
# Needs a Python with torch: TORCH_PYTHON=path/to/python, or .venv-torch (see the message
# printed when it is missing). TARGETS defaults to asge-vgg8; ROUNDS to 5.
TORCH_PYTHON ?=
TARGETS      ?= asge-vgg8
ROUNDS       ?= 5
bench-torch: build
	$(BIN) bench $(TARGETS) --compare-torch --rounds $(ROUNDS) --precision fp32,bf16 \
	    --torch-modes eager,compile $(if $(TORCH_PYTHON),--torch-python $(TORCH_PYTHON),) \
	    $(if $(THREADS),--threads $(THREADS),)

demo: setup-demo build
	bash tools/demo.sh $(BIN) $(DATA)

# Evaluates every reference checkpoint in checkpoints/ (manifest.json) and compares with the
# numbers stated there; converts Fashion-MNIST and MNIST first if they are missing.
checkpoints-check: setup-demo build
	bash tools/checkpoints/prepare-data.sh $(BIN) $(DATA)
	python3 tools/checkpoints/check.py --bin $(BIN) --data $(DATA) $(if $(THREADS),--threads $(THREADS),)

clean:
	rm -rf .build
