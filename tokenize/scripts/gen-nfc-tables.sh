#!/usr/bin/env bash
# Regenerates tokenize/internal/gobpe/nfc_tables.go: the NFC tables of the
# pure-Go tokenizer backend, dumped from the Rust crate Hugging Face
# tokenizers normalizes with (unicode-normalization-alignments 0.1.12,
# Unicode 9.0), so both backends normalize identically. Needs cargo and
# crates.io; the build happens in a temporary directory.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$here/../internal/gobpe/nfc_tables.go
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
CARGO_TARGET_DIR=$target cargo run --quiet --release --locked \
	--manifest-path "$here/nfc-tables/Cargo.toml" >"$out.tmp"
gofmt "$out.tmp" >"$out"
rm -f "$out.tmp"
echo "wrote $out"
