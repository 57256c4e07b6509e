#!/usr/bin/env bash
# Renders docs/digest-example.md, its plots (docs/digest-example/*.svg) and its
# HTML page (docs/digest-example.html) from a sweep of docs/plans/h200-digest.yaml
# on one GPU: the reference engine's CUDA backend, fp16, 14B and 32B shapes,
# 10k->0.8k and 20k->1k, int8 weights at 10k->0.8k, 2 repeats after 1 warmup
# (about 4 minutes on an H200).
# Everything it writes is generated; a test checks that the markdown is what
# `lmdrive report` makes of docs/digest-example/results.jsonl.
#
# usage (from the repository root, on the GPU host, lmdrive built with the CUDA
# backend, e.g. by `make build` there or the build step of gpu_check.sh):
#   bash docs/plans/h200-digest.sh [path/to/lmdrive] [lmdrive sweep flags...]
#   bash docs/plans/h200-digest.sh build/bin/lmdrive --lib-path build/gpu/lib
# Environment: LMDRIVE_DIGEST_MORE=1  also sweep docs/plans/h200-digest-more.yaml
#              (transformers fp16 at 10k->0.8k, engine hf;
#              about 3 more minutes; cells an engine cannot run become failed rows)
#              LMDRIVE_DIGEST_COPY_TO=DIR  also copy what was made into DIR
set -uo pipefail
# Read once and taken out of the environment: the records' repro block keeps
# LMDRIVE_* variables, and this one names a folder of the machine.
COPY_TO=${LMDRIVE_DIGEST_COPY_TO:-}
unset LMDRIVE_DIGEST_COPY_TO
BIN=${1:-build/bin/lmdrive}
shift || true
TITLE="lmdrive digest example: the reference engine on one H200"
DEST=docs/digest-example
RESULTS=build/digest-example/results.jsonl   # resumable: a second run skips done cells
export NCCL_NVLS_ENABLE=0
mkdir -p "$DEST" build/digest-example

echo "== $(date -u +%H:%M:%S) sweep docs/plans/h200-digest.yaml"
timeout 420 "$BIN" sweep --progress lines --out "$RESULTS" "$@" docs/plans/h200-digest.yaml >/dev/null
rc=$?
# 4: some cells failed (they are rows of the digest); anything else stops here.
if [ $rc -ne 0 ] && [ $rc -ne 4 ]; then
  echo "!! sweep failed (rc=$rc)"
  exit 1
fi
if [ "${LMDRIVE_DIGEST_MORE:-0}" = 1 ]; then
  echo "== $(date -u +%H:%M:%S) sweep docs/plans/h200-digest-more.yaml"
  timeout 420 "$BIN" sweep --progress lines --out "$RESULTS" "$@" docs/plans/h200-digest-more.yaml >/dev/null
fi

echo "== $(date -u +%H:%M:%S) report"
# The committed records name no path of this machine and not its host name.
sed -e "s|$PWD/||g" -e "s|\"hostname\":\"$(hostname)\"|\"hostname\":\"h200-host\"|g" "$RESULTS" >"$DEST/results.jsonl"
rm -f "$DEST"/*.svg
"$BIN" report --title "$TITLE" "$DEST/results.jsonl" >docs/digest-example.md &&
  "$BIN" report --title "$TITLE" --html docs/digest-example.html --plots "$DEST" "$DEST/results.jsonl" >/dev/null || {
  echo "!! report failed"
  exit 1
}
if [ -n "$COPY_TO" ]; then
  mkdir -p "$COPY_TO"
  cp -r docs/digest-example.md docs/digest-example.html "$DEST" "$COPY_TO/"
fi
cat docs/digest-example.md
ls -l docs/digest-example.md docs/digest-example.html "$DEST"
