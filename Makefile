# lmdrive build. `make` builds everything; `make test` runs every test;
# `make run` benchmarks the built-in reference engine on the CPU.
BUILD    ?= build
LIBDIR   := $(abspath $(BUILD))/lib/lmdrive
TOKLIB   := $(abspath $(BUILD))/lib
BIN      := $(BUILD)/bin/lmdrive
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.Version=$(VERSION) -X main.Commit=$(COMMIT)
# The Python test environment (torch + transformers for the CPU, pinned):
# created by `make pyenv`; LMDRIVE_SKIP_PY=1 skips it and the tests that need it.
PYENV    := $(abspath $(BUILD))/pyenv
PYTHON   ?= python3
WORKER   := driver/pyworker

export CGO_LDFLAGS := -L$(TOKLIB)
# go-nvml declares NVML functions the driver has deprecated; their warnings are noise.
export CGO_CFLAGS := -O2 -g -Wno-deprecated-declarations
export LMDRIVE_LIB_PATH := $(LIBDIR)

.PHONY: all build native tokenizers worker pyenv test test-go test-native test-nocgo test-py run dist clean

all: build

native:
	cmake -S . -B $(BUILD)/cmake -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_LIB_DIR=$(LIBDIR) >/dev/null
	cmake --build $(BUILD)/cmake -j $(JOBS)

tokenizers: $(TOKLIB)/libtokenizers.a

$(TOKLIB)/libtokenizers.a: tokenize/scripts/build-libtokenizers.sh
	bash tokenize/scripts/build-libtokenizers.sh $(TOKLIB)

# The Python worker, beside the engine libraries (the binary also embeds it).
worker:
	rm -rf $(LIBDIR)/pyworker && mkdir -p $(LIBDIR)/pyworker/lmdrive_py
	cp $(WORKER)/lmdrive_worker.py $(LIBDIR)/pyworker/
	cp $(WORKER)/lmdrive_py/*.py $(LIBDIR)/pyworker/lmdrive_py/

pyenv:
ifeq ($(LMDRIVE_SKIP_PY),1)
	@echo "LMDRIVE_SKIP_PY=1: no Python test environment; Python worker tests are skipped"
else
	@if [ ! -f $(PYENV)/.installed ] || [ $(WORKER)/requirements-test.txt -nt $(PYENV)/.installed ]; then \
		bash $(WORKER)/pyenv.sh $(PYENV) $(PYTHON); fi
endif

build: native tokenizers worker
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/lmdrive

test: build test-native test-go test-nocgo test-py

test-native: native
	ctest --test-dir $(BUILD)/cmake --output-on-failure

test-go: build pyenv
	go vet ./...
	LMDRIVE_REQUIRE_NATIVE=1 LMDRIVE_BIN=$(abspath $(BIN)) LMDRIVE_PYTHON=$(if $(filter 1,$(LMDRIVE_SKIP_PY)),,$(PYENV)/bin/python) \
		go test -count=1 -timeout 30m ./...

# The worker's own tests: adapters against fakes of vLLM, LMDeploy and
# TensorRT-LLM, the protocol, the hf adapter's pieces.
test-py: pyenv
ifeq ($(LMDRIVE_SKIP_PY),1)
	@echo "LMDRIVE_SKIP_PY=1: Python worker tests skipped"
else
	$(PYENV)/bin/python -m pytest -q -p no:cacheprovider $(WORKER)/tests
endif

# The cgo-free build (static, bare-metal images): the pure-Go tokenizer and
# the telemetry package's "needs cgo" path.
test-nocgo:
	CGO_ENABLED=0 go build -o /dev/null ./cmd/lmdrive
	CGO_ENABLED=0 go test -count=1 ./tokenize/... ./cuda/... ./bench/...

# The main job: a benchmark of the reference engine on the CPU.
run: build
	$(BIN) run --engine ref --model random:tiny --prompt-tokens 2048 --max-new 256 \
		--ignore-eos --warmup 1 --repeats 3 --out results/ref-cpu.jsonl

dist: build
	rm -rf dist/lmdrive && mkdir -p dist/lmdrive/bin dist/lmdrive/lib/lmdrive
	cp $(BIN) dist/lmdrive/bin/
	cp $(LIBDIR)/*.so dist/lmdrive/lib/lmdrive/
	cp -r $(LIBDIR)/pyworker dist/lmdrive/lib/lmdrive/
	cp -r docs README.md dist/lmdrive/
	tar -C dist -czf dist/lmdrive-$(VERSION)-linux-$(shell uname -m).tar.gz lmdrive

clean:
	rm -rf $(BUILD) dist
