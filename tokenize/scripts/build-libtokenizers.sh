#!/usr/bin/env bash
# Builds libtokenizers.a, the Rust static library behind the Go module
# github.com/daulet/tokenizers, and copies it into the directory given as
# the only argument. The Go module and this library must be the same
# release: the Go side refuses to link against any other version.
#
# The module cache is read-only, so the crate is built from a writable copy
# kept next to the output directory (<out>/../tokenizers-src/<version>).
# Cargo fetches crates from crates.io only and --locked keeps it on the
# versions in the release's Cargo.lock. A second run with an up-to-date
# library does nothing.
#
# Usage: build-libtokenizers.sh <absolute output directory>
set -euo pipefail

readonly module=github.com/daulet/tokenizers
# Releases after v1.22.1 depend on a git repository that cannot be fetched
# from crates.io alone; keep this pin and go.mod in step.
readonly version=v1.22.1

die() { echo "build-libtokenizers: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 <absolute output directory>"
out=$1
[[ $out == /* ]] || die "output directory must be an absolute path, got '$out'"

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
lib=$out/libtokenizers.a
stamp=$out/libtokenizers.version

if [[ -f $lib && -f $stamp && $(cat "$stamp") == "$version" && $lib -nt ${BASH_SOURCE[0]} ]]; then
	echo "build-libtokenizers: $lib is up to date ($version)"
	exit 0
fi

command -v go >/dev/null || die "go is not on PATH"
command -v cargo >/dev/null || die "cargo is not on PATH (install Rust, e.g. with rustup)"

# The module version in go.mod must match the library we build.
required=$(cd "$repo_root" && go list -m -f '{{.Version}}' "$module" 2>/dev/null || true)
if [[ -n $required && $required != "$version" ]]; then
	die "go.mod requires $module $required but this script builds $version; update one of them"
fi

info=$(cd "$repo_root" && go mod download -json "$module@$version") ||
	die "go mod download $module@$version failed"
module_dir=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)
[[ -n $module_dir && -f $module_dir/Cargo.toml ]] ||
	die "could not find the source of $module@$version (go mod download said: $info)"

src=$(dirname "$out")/tokenizers-src/$version
if [[ ! -f $src/.copied ]]; then
	rm -rf "$src"
	mkdir -p "$src"
	cp -R "$module_dir"/. "$src"/
	chmod -R u+w "$src"
	touch "$src/.copied"
fi

echo "build-libtokenizers: cargo build --release --locked in $src"
start=$(date +%s)
(cd "$src" && cargo build --release --locked --lib)
echo "build-libtokenizers: cargo finished in $(( $(date +%s) - start ))s"

built=$src/target/release/libtokenizers.a
[[ -f $built ]] || die "cargo did not produce $built"
mkdir -p "$out"
cp "$built" "$lib.tmp"
mv -f "$lib.tmp" "$lib"
printf '%s\n' "$version" >"$stamp"
echo "build-libtokenizers: wrote $lib"
