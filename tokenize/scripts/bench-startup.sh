#!/usr/bin/env bash
# Times whole processes that load the built-in Qwen2.5 tokenizer and encode
# one word: `lmdrive tokenize encode` with each backend, against a Python
# process that loads the same tokenizer.json with Hugging Face tokenizers
# and encodes the same word. Runs each in turn (A B A B …), one warm-up
# each, then prints the median of the runs' CPU time (user + system, from
# the kernel's accounting of the finished process) and wall time, and each
# command's median CPU ratio to Python's, pair by pair.
#
#   bash tokenize/scripts/bench-startup.sh [runs]   # after make; default 10
#
# LMDRIVE_BIN=path times another lmdrive binary (an older build, say).
#
# Needs python3 with venv; tokenizers is installed from PyPI into
# build/bench-venv the first time.
set -euo pipefail
runs=${1:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${LMDRIVE_BIN:-$root/build/bin/lmdrive}
[ -x "$bin" ] || { echo "build lmdrive first (make build)"; exit 1; }
venv=$root/build/bench-venv
if ! "$venv/bin/python" -c 'import tokenizers' 2>/dev/null; then
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet 'tokenizers==0.23.3'
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gzip -dc "$root/tokenize/internal/defaultdata/qwen2.5-tokenizer.json.gz" >"$work/tokenizer.json"
cat >"$work/load.py" <<PY
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file("$work/tokenizer.json")
print(t.encode(sys.argv[1], add_special_tokens=False).ids)
PY

"$venv/bin/python" - "$runs" "$bin" "$venv/bin/python" "$work/load.py" <<'PY'
import os, statistics, subprocess, sys, time
runs, lmdrive, python, script = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
commands = {
    "python tokenizers": [python, script, "hello"],
    "lmdrive auto": [lmdrive, "tokenize", "encode", "hello"],
    "lmdrive go": [lmdrive, "tokenize", "encode", "--tokenizer-backend", "go", "hello"],
    "lmdrive hf": [lmdrive, "tokenize", "encode", "--tokenizer-backend", "hf", "hello"],
}

def once(argv):
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{argv} failed with status {status}")
    return ru.ru_utime + ru.ru_stime, time.perf_counter() - start

cpu = {k: [] for k in commands}
wall = {k: [] for k in commands}
for i in range(runs + 1):
    for name, argv in commands.items():
        c, w = once(argv)
        if i > 0:  # the first round warms the page cache
            cpu[name].append(c)
            wall[name].append(w)
py = cpu["python tokenizers"]
print(f"{'command':20} {'cpu s (median)':>15} {'wall s (median)':>16} {'cpu / python':>13}")
for name in commands:
    ratio = statistics.median(a / b for a, b in zip(cpu[name], py))
    print(f"{name:20} {statistics.median(cpu[name]):15.3f} {statistics.median(wall[name]):16.3f} {ratio:13.2f}")
PY
