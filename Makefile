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

.PHONY: all build native tokenizers test test-go test-native test-nocgo test-sdk-headers run dist clean

all: build

native:
	cmake -S . -B $(BUILD)/cmake -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_LIB_DIR=$(LIBDIR) >/dev/null
	cmake --build $(BUILD)/cmake -j $(JOBS)

tokenizers: $(TOKENIZERS)
ifneq ($(HF),yes)
	@echo "lmdrive: cargo not found: building without the hf tokenizer backend; the pure-Go tokenizer (identical ids) stands in"
endif

$(TOKLIB)/libtokenizers.a: tokenize/scripts/build-libtokenizers.sh
	bash tokenize/scripts/build-libtokenizers.sh $(TOKLIB)

build: native tokenizers
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/lmdrive

test: build test-native test-go test-nocgo test-sdk-headers

test-native: native
	ctest --test-dir $(BUILD)/cmake --output-on-failure

test-go: build
	go vet ./...
	LMDRIVE_REQUIRE_NATIVE=1 LMDRIVE_BIN=$(abspath $(BIN)) go test -count=1 ./...

# The cgo-free build (static, bare-metal images): the pure-Go tokenizer and
# the telemetry package's "needs cgo" path.
test-nocgo:
	CGO_ENABLED=0 go build -o /dev/null ./cmd/lmdrive
	CGO_ENABLED=0 go test -count=1 ./tokenize/... ./cuda/... ./bench/...

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

dist: build
	rm -rf dist/lmdrive && mkdir -p dist/lmdrive/bin dist/lmdrive/lib/lmdrive
	cp $(BIN) dist/lmdrive/bin/
	cp $(LIBDIR)/*.so dist/lmdrive/lib/lmdrive/
	cp -r docs README.md dist/lmdrive/
	tar -C dist -czf dist/lmdrive-$(VERSION)-linux-$(shell uname -m).tar.gz lmdrive

clean:
	rm -rf $(BUILD) dist
