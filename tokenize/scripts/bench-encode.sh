#!/usr/bin/env bash
# Times encoding one 20,000-token mixed prompt three ways on this machine:
# lmdrive's hf backend (Rust through cgo), its pure-Go backend, and Hugging
# Face tokenizers from Python, all on the same bytes with the built-in
# Qwen2.5 tokenizer. Run from anywhere inside the repository after `make`
# (the hf backend needs build/lib/libtokenizers.a):
#
#   bash tokenize/scripts/bench-encode.sh [runs]
#
# Needs python3 with venv; tokenizers is installed from PyPI into
# build/bench-venv the first time.
set -euo pipefail
runs=${1:-50}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
export CGO_LDFLAGS="-L$build/lib"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
text=$work/prompt.txt

cd "$root"
echo "== prompt: lmdrive prompt --tokens 20000 --seed 1 --mix mixed"
go build -o "$work/lmdrive" ./cmd/lmdrive
"$work/lmdrive" prompt --tokens 20000 --seed 1 --mix mixed --out "$text"
echo "   $(wc -c <"$text") bytes"

echo "== Go: go test -bench BenchmarkEncode -benchtime ${runs}x ./tokenize"
LMDRIVE_BENCH_TEXT=$text go test -run '^$' -bench '^BenchmarkEncode$' -benchtime "${runs}x" -count 3 ./tokenize |
	awk '/^BenchmarkEncode/ { split($1, name, "/"); sub(/-[0-9]+$/, "", name[2]);
		printf "   %-3s %8.2f ms per encode (%s tokens)\n", name[2], $3 / 1e6, $7 }'

venv=$build/bench-venv
if ! "$venv/bin/python" -c 'import tokenizers' 2>/dev/null; then
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet 'tokenizers==0.23.3'
fi
echo "== Python: Hugging Face tokenizers, Tokenizer.encode(text, add_special_tokens=False)"
"$venv/bin/python" - "$root/tokenize/internal/defaultdata/qwen2.5-tokenizer.json.gz" "$text" "$runs" <<'PY'
import gzip, statistics, sys, time
import tokenizers
from tokenizers import Tokenizer
path, text_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = Tokenizer.from_str(gzip.open(path).read().decode("utf-8"))
text = open(text_path, encoding="utf-8", newline="").read()
n = len(tok.encode(text, add_special_tokens=False).ids)
for trial in range(3):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        tok.encode(text, add_special_tokens=False)
        times.append(time.perf_counter() - t)
    print(f"   py  {statistics.mean(times) * 1e3:8.2f} ms per encode ({n} tokens; median "
          f"{statistics.median(times) * 1e3:.2f} ms; tokenizers {tokenizers.__version__})")
PY
