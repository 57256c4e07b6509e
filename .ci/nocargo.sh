#!/usr/bin/env bash
# Set-up without Rust: a machine with Go, CMake and a C++ compiler but no
# cargo must still build and pass `make run` and `make test`, with the
# pure-Go tokenizer standing in for the hf backend and the build saying so
# in one line. This runs both with a PATH holding every program but cargo,
# rustc and rustup, and a tokenizer-library folder without libtokenizers.a.
#
#   bash .ci/nocargo.sh          # make run, then make test
#   bash .ci/nocargo.sh run      # make run only (CI: make test ran already)
set -euo pipefail
targets=("${@:-run test}")
read -ra targets <<<"${targets[*]}"
cd "$(dirname "$0")/.."

bin=$(mktemp -d)
toklib=$(mktemp -d)
trap 'rm -rf "$bin" "$toklib"' EXIT
shopt -s nullglob
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do
    n=${f##*/}
    case $n in cargo* | rustc* | rustup*) continue ;; esac
    [ -e "$bin/$n" ] || [ -L "$bin/$n" ] || ln -s "$f" "$bin/$n"
  done
done
export PATH=$bin
if command -v cargo >/dev/null; then
  echo "nocargo: cargo is still on PATH" >&2
  exit 1
fi

log=$(mktemp)
make TOKLIB="$toklib" run 2>&1 | tee "$log"
if ! grep -q "cargo not found: building without the hf tokenizer backend" "$log"; then
  echo "nocargo: the build did not say that the hf backend is left out" >&2
  exit 1
fi
rm -f "$log"
for t in "${targets[@]}"; do
  [ "$t" = run ] || make TOKLIB="$toklib" "$t"
done
echo "nocargo: make ${targets[*]} pass without cargo"
