# lmdrive build. `make` builds everything; `make test` runs every test;
# `make run` benchmarks the built-in reference engine on the CPU.
BUILD    ?= build
LIBDIR   := $(abspath $(BUILD))/lib/lmdrive
TOKLIB   := $(abspath $(BUILD))/lib
BIN      := $(BUILD)/bin/lmdrive
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The build date is the commit's date, so that two builds of one commit give
# the same bytes (reproducible-builds.org's SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BUILD_DATE := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
# -buildid= leaves out the Go build ID, which hashes the build environment.
LDFLAGS  := -buildid= -X main.Version=$(VERSION) -X main.Commit=$(COMMIT) -X main.BuildDate=$(BUILD_DATE)
# CMake targets `make native` builds: all of them (tests too) by default;
# the dist checks build only the engine libraries.
NATIVE_TARGETS ?= all

export CGO_LDFLAGS := -L$(TOKLIB)
# go-nvml declares NVML functions the driver has deprecated; their warnings are noise.
export CGO_CFLAGS := -O2 -g -Wno-deprecated-declarations
export LMDRIVE_LIB_PATH := $(LIBDIR)

# The hf tokenizer backend links Rust's tokenizers (libtokenizers.a), which
# cargo builds. Without cargo, and without the library already built, the
# pure-Go backend (identical ids) stands in: every go command gets the
# lmdrive_nohf tag through GOFLAGS.
HF := $(shell test -f $(TOKLIB)/libtokenizers.a || command -v cargo >/dev/null 2>&1 && echo yes)
ifeq ($(HF),yes)
TOKENIZERS := $(TOKLIB)/libtokenizers.a
else
TOKENIZERS :=
export GOFLAGS := $(strip $(GOFLAGS) -tags=lmdrive_nohf)
endif

# Tarballs (make dist, make dist-static): docs/dist.md.
DIST     ?= dist
GOARCH   := $(shell go env GOARCH 2>/dev/null || echo amd64)
DIST_NAME := lmdrive-$(VERSION)-linux-$(GOARCH)
BIN_STATIC := $(BUILD)/bin-static/lmdrive
# The Python worker's folder; the tarballs carry it as lib/lmdrive/pyworker
# when it exists.
PYWORKER_DIR ?= driver/pyworker
# The Python test environment (torch + transformers for the CPU, pinned):
# created by `make pyenv`; LMDRIVE_SKIP_PY=1 skips it and the tests that need it.
PYENV    := $(abspath $(BUILD))/pyenv
PYTHON   ?= python3
PYLOCK   := $(PYWORKER_DIR)/tests/requirements.txt

.PHONY: all build build-static native tokenizers worker pyenv test test-go test-native test-nocgo test-py test-sdk-headers run \
	dist dist-static test-dist repro-test image-test clean fuzz

all: build

native:
	cmake -S . -B $(BUILD)/cmake -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_LIB_DIR=$(LIBDIR) >/dev/null
	cmake --build $(BUILD)/cmake -j $(JOBS) --target $(NATIVE_TARGETS)

tokenizers: $(TOKENIZERS)
ifneq ($(HF),yes)
	@echo "lmdrive: cargo not found: building without the hf tokenizer backend; the pure-Go tokenizer (identical ids) stands in"
endif

$(TOKLIB)/libtokenizers.a: tokenize/scripts/build-libtokenizers.sh
	bash tokenize/scripts/build-libtokenizers.sh $(TOKLIB)

# The Python worker beside the engine libraries, as in the tarballs (the
# binary also embeds it).
worker:
	rm -rf $(LIBDIR)/pyworker && mkdir -p $(LIBDIR)/pyworker/lmdrive_py
	cp $(PYWORKER_DIR)/lmdrive_worker.py $(LIBDIR)/pyworker/
	cp $(PYWORKER_DIR)/lmdrive_py/*.py $(LIBDIR)/pyworker/lmdrive_py/

pyenv:
ifeq ($(LMDRIVE_SKIP_PY),1)
	@echo "LMDRIVE_SKIP_PY=1: no Python test environment; Python worker tests are skipped"
else
	@if [ ! -f $(PYENV)/.installed ] || [ $(PYLOCK) -nt $(PYENV)/.installed ]; then \
		bash $(PYWORKER_DIR)/tests/pyenv.sh $(PYENV) $(PYTHON); fi
endif

build: native tokenizers worker
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/lmdrive

test: build test-native test-go test-nocgo test-py test-sdk-headers

test-native: native
	ctest --test-dir $(BUILD)/cmake --output-on-failure

test-go: build pyenv
	go vet ./...
	LMDRIVE_REQUIRE_NATIVE=1 LMDRIVE_BIN=$(abspath $(BIN)) LMDRIVE_PYTHON=$(if $(filter 1,$(LMDRIVE_SKIP_PY)),,$(PYENV)/bin/python) \
		go test -count=1 -timeout 30m ./...

# The worker's own tests: the vLLM, LMDeploy and TensorRT-LLM adapters
# against fakes of their libraries, the random weights.
# Then the ref engine's logits against transformers on the CPU (fp32 and
# int8 weights against the dequantized checkpoint; bar 1e-4, about 20 s).
test-py: pyenv native
ifeq ($(LMDRIVE_SKIP_PY),1)
	@echo "LMDRIVE_SKIP_PY=1: Python worker tests skipped"
else
	$(PYENV)/bin/python -m pytest -q -p no:cacheprovider $(PYWORKER_DIR)/tests
	$(PYENV)/bin/python native/ref/tests/hf_parity.py $(LIBDIR)/liblmdrive_ref.so
endif

# The cgo-free build (make dist-static): the pure-Go tokenizer, the telemetry
# package's "needs cgo" path, and the ref engine loading and matching
# transformers through purego without cgo.
test-nocgo: native
	CGO_ENABLED=0 go build -o /dev/null ./cmd/lmdrive
	CGO_ENABLED=0 go test -count=1 ./tokenize/... ./cuda/... ./bench/... ./driver/doctor/...
	CGO_ENABLED=0 LMDRIVE_REQUIRE_NATIVE=1 go test -count=1 -run 'TestNativeEngineGenerates|TestRefMatchesTransformers' ./driver/

# The engine shims compiled against real SDK headers kept beside the
# repository (../shared/third_party); one "skip:" line where they are absent.
test-sdk-headers:
	bash native/shimcommon/scripts/sdk-headers-check.sh all

# Every fuzz target for FUZZTIME each (60s, 5m, or 1000000x executions);
# docs/fuzzing.md lists them and the counts reached.
FUZZTIME ?= 60s
fuzz: native tokenizers
	BUILD=$(BUILD) bash scripts/fuzz.sh $(FUZZTIME)

# The main job: a benchmark of the reference engine on the CPU.
run: build
	$(BIN) run --engine ref --model random:tiny --prompt-tokens 2048 --max-new 256 \
		--ignore-eos --warmup 1 --repeats 3 --out results/ref-cpu.jsonl

# dist: the cgo build (Hugging Face tokenizers, NVML telemetry).
dist: build
	bash cmd/lmdrive/dist/pack.sh --name $(DIST_NAME) --bin $(BIN) --libdir $(LIBDIR) \
		--out $(DIST) --epoch $(SOURCE_DATE_EPOCH) --cgo 1 --pyworker $(PYWORKER_DIR)

# dist-static: no cgo, so no libstdc++ in the binary and no Rust to build;
# the pure-Go tokenizer, no GPU telemetry; engines still load (purego).
build-static: native
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_STATIC) ./cmd/lmdrive

dist-static: build-static
	bash cmd/lmdrive/dist/pack.sh --name $(DIST_NAME)-static --bin $(BIN_STATIC) --libdir $(LIBDIR) \
		--out $(DIST) --epoch $(SOURCE_DATE_EPOCH) --cgo 0 --pyworker $(PYWORKER_DIR)

# The tarballs' own checks (root, network to Debian's mirror the first time):
# two builds give the same bytes, and both tarballs run in a minimal Debian.
test-dist: repro-test image-test

repro-test: dist dist-static
	bash cmd/lmdrive/dist/repro-test.sh $(DIST) "$(VERSION)" "$(COMMIT)" "$(SOURCE_DATE_EPOCH)"

image-test: dist dist-static
	bash cmd/lmdrive/dist/image-test.sh $(DIST)/$(DIST_NAME).tar.gz $(DIST)/$(DIST_NAME)-static.tar.gz

clean:
	rm -rf $(BUILD) $(DIST)
