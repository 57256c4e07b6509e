#!/usr/bin/env bash
# Regenerates the golden files on a machine with torch and transformers:
#   bash testdata/golden/gpu_golden.sh LMDRIVE_BINARY OUT_DIR
set -euo pipefail
bin=$1 out=$2
work=$(mktemp -d)
"$bin" model init --preset tiny --seed 1 --out "$work/tiny"
"$bin" model init --preset tiny-untied --seed 2 --out "$work/tiny-untied"
python3 "$(dirname "$0")/make_golden.py" "$out" "tiny=1:$work/tiny" "tiny-untied=2:$work/tiny-untied"
