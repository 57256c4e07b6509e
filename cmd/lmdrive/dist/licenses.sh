#!/usr/bin/env bash
# Collects the license texts of everything an lmdrive tarball carries into
# <out> and writes <out>/README.md, an index of component, version, declared
# license and files:
#   - Go: every module linked into cmd/lmdrive for this CGO_ENABLED (go list
#     -deps, not go.mod: test-only modules are not shipped), and Go itself;
#   - Rust: the crates linked into libtokenizers.a (cgo builds only), from
#     cargo tree over the pinned release's Cargo.lock (normal edges, no proc
#     macros, no build scripts) and the crates' own files in cargo's registry;
#   - system libraries: those bundled beside the engine libraries (libgomp)
#     and the GCC runtime linked into them (libstdc++, libgcc), from their
#     Debian packages' copyright files;
#   - the built-in Qwen2.5 tokenizer data.
# A Go module without a license file is an error; a crate without one is
# listed with its declared license (some crates publish none).
#
# Usage: licenses.sh <out dir> <cgo: 0|1> <native: 0|1> [bundled system library...]
set -euo pipefail

die() { echo "licenses: $*" >&2; exit 1; }
[[ $# -ge 3 ]] || die "usage: $0 <out dir> <cgo 0|1> <native 0|1> [bundled system library...]"
out=$1 cgo=$2 native=$3
shift 3
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
mkdir -p "$out"
index=$out/README.md.tmp
: >"$index"

# license_files <dir> <max depth>: license, unlicense, copying and notice files.
license_files() {
	(cd "$1" && find . -maxdepth "$2" -type f \( -iname 'licen[cs]e*' -o -iname 'unlicen[cs]e*' -o -iname 'copying*' -o -iname 'notice*' \) \
		! -path '*/test*' ! -path '*/vendor/*' | sed 's|^\./||' | LC_ALL=C sort)
}

# copy_licenses <src dir> <dest dir> <max depth>: prints the files copied.
copy_licenses() {
	local f
	for f in $(license_files "$1" "$3"); do
		mkdir -p "$2/$(dirname "$f")"
		cp "$1/$f" "$2/$f"
		echo "$f"
	done
}

row() { printf '| %s | %s | %s | %s |\n' "$@" >>"$index"; }

# Go modules linked into the binary, and Go's own standard library and runtime.
goroot=$(go env GOROOT)
gov=$(go env GOVERSION)
mkdir -p "$out/go/$gov"
cp "$goroot/LICENSE" "$out/go/$gov/LICENSE"
row "Go standard library and runtime" "$gov" "BSD-3-Clause" "go/$gov/LICENSE"
mods=$(cd "$repo" && CGO_ENABLED=$cgo go list -deps \
	-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/lmdrive | LC_ALL=C sort -u)
while read -r path version dir; do
	[[ -n $path ]] || continue
	[[ -d $dir ]] || die "the source of $path $version is not in the module cache: run go mod download"
	dest=go/$path@$version
	files=$(copy_licenses "$dir" "$out/$dest" 1)
	[[ -n $files ]] || die "Go module $path $version has no LICENSE, UNLICENSE, COPYING or NOTICE file at $dir"
	row "$path" "$version" "see files" "$(sed "s|^|$dest/|" <<<"$files" | paste -sd ' ')"
done <<<"$mods"

# Rust crates of libtokenizers.a.
if [[ $cgo == 1 ]]; then
	tokdir=$(cd "$repo" && go list -m -f '{{.Dir}}' github.com/daulet/tokenizers)
	[[ -f $tokdir/Cargo.lock ]] || die "no Cargo.lock in $tokdir: run go mod download"
	registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
	crates=$(cd "$tokdir" && cargo tree --offline --locked -e normal,no-proc-macro --prefix none -f '{p}|{l}' |
		sed 's/ (\*)$//' | grep -v ' (/' | LC_ALL=C sort -u) ||
		die "cargo tree failed in $tokdir (build libtokenizers.a first: make tokenizers)"
	while IFS='|' read -r nv lic; do
		name=${nv% v*} version=${nv##* v}
		src=$(ls -d "$registry"/*/"$name-$version" 2>/dev/null | head -n 1) ||
			true
		[[ -n $src ]] || die "crate $name $version is not unpacked under $registry (build libtokenizers.a first: make tokenizers)"
		dest=rust/$name-$version
		# Depth 2: crates that bundle C code keep its license one level down
		# (onig_sys: oniguruma/COPYING).
		files=$(copy_licenses "$src" "$out/$dest" 2)
		if [[ -n $files ]]; then
			row "$name (Rust crate)" "$version" "$lic" "$(sed "s|^|$dest/|" <<<"$files" | paste -sd ' ')"
		else
			row "$name (Rust crate)" "$version" "$lic" "the published crate carries no license file; its manifest declares $lic"
		fi
	done <<<"$crates"
	# Rust's standard library is linked into the archive too.
	rustv=$(rustc --version | cut -d' ' -f2)
	doc=$(rustc --print sysroot)/share/doc/rust
	mkdir -p "$out/rust/std-$rustv"
	if [[ -f $doc/COPYRIGHT-library.html ]]; then
		cp "$doc/COPYRIGHT-library.html" "$doc/licenses/MIT.txt" "$doc/licenses/Apache-2.0.txt" "$out/rust/std-$rustv/"
		files="COPYRIGHT-library.html MIT.txt Apache-2.0.txt"
	elif [[ -f /usr/share/doc/rustc/copyright ]]; then
		cp /usr/share/doc/rustc/copyright "$out/rust/std-$rustv/"
		files=copyright
	else
		die "cannot find the Rust standard library's license (rustup's share/doc/rust or Debian's /usr/share/doc/rustc)"
	fi
	row "Rust standard library" "$rustv" "MIT OR Apache-2.0" "$(tr ' ' '\n' <<<"$files" | sed "s|^|rust/std-$rustv/|" | paste -sd ' ')"
fi

# System libraries: the bundled ones, and the GCC runtime that the engine
# libraries link statically (-static-libstdc++ -static-libgcc).
system=("$@")
if [[ $native == 1 ]]; then
	cxx=${CXX:-c++}
	system+=("$($cxx -print-file-name=libstdc++.a)" "$($cxx -print-file-name=libgcc.a)")
fi
seen=""
for f in ${system[@]+"${system[@]}"}; do
	f=$(readlink -f "$f")
	pkg=""
	command -v dpkg-query >/dev/null && pkg=$(dpkg-query -S "$f" 2>/dev/null | head -n 1 | cut -d: -f1) || true
	if [[ -n $pkg && -f /usr/share/doc/$pkg/copyright ]]; then
		copyright=$(readlink -f "/usr/share/doc/$pkg/copyright")
		dest=system/$(basename "$(dirname "$copyright")").copyright
		if [[ " $seen " != *" $copyright "* ]]; then
			mkdir -p "$out/system"
			cp "$copyright" "$out/$dest"
			seen="$seen $copyright"
		fi
		lic="see file"
		case $pkg in libgomp* | libstdc++* | libgcc* | gcc-*) lic="GPL-3.0-or-later WITH GCC-exception-3.1" ;; esac
		row "$(basename "$f") (Debian package $pkg)" "$(dpkg-query -W -f '${Version}' "$pkg")" "$lic" "$dest"
		continue
	fi
	# Not from a Debian package (a CUDA toolkit, say): the license files of
	# the folder it lives in or of the two above it (EULA.txt of a toolkit).
	found=""
	for dir in "$(dirname "$f")" "$(dirname "$(dirname "$f")")" "$(dirname "$(dirname "$(dirname "$f")")")"; do
		found=$(find "$dir" -maxdepth 1 -type f \( -iname 'eula*' -o -iname 'licen[cs]e*' -o -iname 'unlicen[cs]e*' -o -iname 'copying*' -o -iname 'notice*' \) | LC_ALL=C sort)
		[[ -n $found ]] && break
	done
	dest=system/$(basename "$f")
	if [[ -n $found ]]; then
		mkdir -p "$out/$dest"
		cp $found "$out/$dest/"
		row "$(basename "$f")" "from $(dirname "$f")" "see files" "$(for x in $found; do printf '%s ' "$dest/$(basename "$x")"; done)"
	elif [[ -n ${DIST_EXTRA_LICENSES:-} ]]; then
		row "$(basename "$f")" "from $(dirname "$f")" "see extra/" "extra/ (DIST_EXTRA_LICENSES)"
	else
		die "no license found for $f (no Debian package owns it, no EULA or LICENSE file beside it): put its license in a folder named by DIST_EXTRA_LICENSES, or add its soname to DIST_SYSTEM_LIBS to take it from the host"
	fi
done
if [[ -n ${DIST_EXTRA_LICENSES:-} ]]; then
	mkdir -p "$out/extra"
	cp -r "$DIST_EXTRA_LICENSES"/. "$out/extra/"
fi

# The built-in tokenizer's data.
mkdir -p "$out/qwen2.5-tokenizer"
cp "$repo/tokenize/internal/defaultdata/PROVENANCE.md" "$repo/tokenize/internal/defaultdata/LICENSE" "$out/qwen2.5-tokenizer/"
row "Qwen2.5 tokenizer data (built in)" "see PROVENANCE.md" "Apache-2.0" "qwen2.5-tokenizer/LICENSE qwen2.5-tokenizer/PROVENANCE.md"

{
	echo "# Licenses of what this tarball carries"
	echo
	echo "Written by cmd/lmdrive/dist/licenses.sh at build time. \"see files\": the"
	echo "module's own license files; Rust crates list the license their manifest declares."
	echo
	echo "| component | version | license | files |"
	echo "| --- | --- | --- | --- |"
	cat "$index"
} >"$out/README.md"
rm -f "$index"
