#!/usr/bin/env bash
# Checks that the tarballs are reproducible: builds them a second time from a
# copy of the source tree in another folder (another path length), with an
# empty Go build cache and a fresh CMake build, and compares the bytes with
# the tarballs `make dist dist-static` left in <dist dir>.
#
# libtokenizers.a (Rust) is an input here, copied, not rebuilt: cargo's own
# reproducibility is not what this checks (docs/dist.md).
#
# Usage: repro-test.sh <dist dir> <version> <commit> <source date epoch>
set -euo pipefail

die() { echo "repro-test: $*" >&2; exit 1; }
[[ $# -eq 4 ]] || die "usage: $0 <dist dir> <version> <commit> <source date epoch>"
dist=$(cd "$1" && pwd) version=$2 commit=$3 epoch=$4
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=$repo/${BUILD:-build}
goarch=$(go env GOARCH)
first=("$dist/lmdrive-$version-linux-$goarch.tar.gz" "$dist/lmdrive-$version-linux-$goarch-static.tar.gz")
for f in "${first[@]}"; do
	[[ -f $f ]] || die "$f is missing: run make dist dist-static first"
done
[[ -f $build/lib/libtokenizers.a ]] || die "$build/lib/libtokenizers.a is missing: run make tokenizers first"

work=$(mktemp -d "${TMPDIR:-/tmp}/lmdrive-repro.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy=$work/a-longer-folder-name/lmdrive
mkdir -p "$copy/build/lib"
# The files git knows (tracked, and new ones not ignored), as they are now.
(cd "$repo" && git ls-files -z -co --exclude-standard |
	while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$copy" -xf -
cp "$build/lib/libtokenizers.a" "$copy/build/lib/"
# The stamp that tells the build script the library is current.
(cd "$repo" && go list -m -f '{{.Version}}' github.com/daulet/tokenizers) >"$copy/build/lib/libtokenizers.version"

targets=lmdrive_ref
[[ -f $build/lib/lmdrive/liblmdrive_ref_cuda.so ]] && targets="lmdrive_ref lmdrive_ref_cuda"
start=$(date +%s)
GOCACHE=$work/gocache make -C "$copy" --no-print-directory dist dist-static \
	VERSION="$version" COMMIT="$commit" SOURCE_DATE_EPOCH="$epoch" NATIVE_TARGETS="$targets" \
	DIST="$work/dist" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; die "the second build failed"; }
echo "repro-test: second build in $(($(date +%s) - start)) s"

status=0
for f in "${first[@]}"; do
	second=$work/dist/$(basename "$f")
	if cmp -s "$f" "$second"; then
		echo "repro-test: same bytes: $(basename "$f") ($(sha256sum <"$f" | cut -c1-16)…)"
		continue
	fi
	status=1
	echo "repro-test: DIFFERENT: $(basename "$f"); files that differ:" >&2
	name=$(basename "$f" .tar.gz)
	mkdir -p "$work/x1" "$work/x2"
	tar -C "$work/x1" -xzf "$f" && tar -C "$work/x2" -xzf "$second"
	diff "$work/x1/$name/SHA256SUMS" "$work/x2/$name/SHA256SUMS" >&2 || true
	echo "repro-test: (diffoscope on the two files shows where)" >&2
done
exit $status
