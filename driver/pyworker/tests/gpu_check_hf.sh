#!/usr/bin/env bash
# Engine hf next to the ref engine on one GPU, in one device run:
# random:qwen2.5-14b (the same weights in both engines), a 10k-token prompt,
# fp16, greedy with ignore_eos; transformers' decode shortened to 64 tokens.
# Prints both rows in one report and where the two engines' greedy tokens
# part, if they do.
#
# usage (from the repository root, on a machine with PyTorch and
# transformers in python3, after gpu_check.sh's build step):
#   bash driver/pyworker/tests/gpu_check_hf.sh path/to/lmdrive [out-dir] [ref-lib-dir]
# Environment: LMDRIVE_HF_STEPS  steps to run (default: weights hf14)
#              LMDRIVE_HF_NEW    tokens to generate (default 64)
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash driver/pyworker/tests/gpu_check_hf.sh path/to/lmdrive [out-dir] [ref-lib-dir]" >&2
  exit 2
fi
BIN=$(readlink -f "$1")
OUTD=${2:-build/gpu-check-hf}
LIB=${3:-$PWD/build/gpu/lib}
NEW=${LMDRIVE_HF_NEW:-64}
STEPS=${LMDRIVE_HF_STEPS:-weights hf14}
mkdir -p "$OUTD"
OUTD=$(readlink -f "$OUTD")
exec > >(tee -a "$OUTD/gpu_check_hf.log") 2>&1
export PYTHONUNBUFFERED=1 LMDRIVE_QUIET_ENGINE=1
FAILED=""
want() { [[ " $STEPS " == *" $1 "* ]]; }
phase() { echo "== $(date -u +%H:%M:%S) $*"; }

phase "environment"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, torch.cuda.get_device_name(0))'

if want weights; then
  phase "random weights on the GPU equal the CPU's"
  timeout 300 python3 driver/pyworker/tests/gpu_weights.py || FAILED="$FAILED weights"
fi

if want hf14; then
  rec=$OUTD/hf14.jsonl
  rm -f "$rec"
  common=(--model random:qwen2.5-14b --seed 1 --prompt-tokens 10000 --max-new "$NEW" --ignore-eos
    --warmup 1 --repeats 2 --out "$rec")
  phase "ref 14B, 10k prompt, $NEW new tokens"
  timeout 300 "$BIN" run --engine ref --device cuda --lib-path "$LIB" "${common[@]}" 2>&1 | tail -4 || FAILED="$FAILED ref14"
  phase "hf 14B, 10k prompt, $NEW new tokens (transformers generate, fp16, sdpa)"
  timeout 900 "$BIN" run --engine hf --device cuda --python python3 --lib-path "$LIB" "${common[@]}" 2>&1 | tail -6 || FAILED="$FAILED hf14"
  phase "both engines in one report"
  "$BIN" report "$rec"
  phase "greedy tokens compared"
  python3 - "$rec" <<'PY' || FAILED="$FAILED agree14"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in recs:
    if r.get("status") == "ok":
        by.setdefault(r["engine"]["engine"], r)
if set(by) != {"ref", "hf"}:
    print("missing engine records:", sorted(by)); sys.exit(1)
ref, hf = by["ref"], by["hf"]
a, b = ref["output"]["ids"], hf["output"]["ids"]
same_prompt = ref["prompt"]["hash"] == hf["prompt"]["hash"]
k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print("same prompt ids: %s (%s)" % (same_prompt, ref["prompt"]["hash"]))
print("greedy tokens: %d of %d identical%s" % (k, min(len(a), len(b)),
      "" if k == min(len(a), len(b)) else "; first difference at step %d: ref %d, hf %d" % (k, a[k], b[k])))
print("hf versions:", json.dumps(hf["engine"].get("versions", {})))
sys.exit(0 if same_prompt else 1)
PY
fi

if [ -n "$FAILED" ]; then
  echo "failed steps:$FAILED"
  exit 1
fi
