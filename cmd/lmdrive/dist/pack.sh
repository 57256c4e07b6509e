#!/usr/bin/env bash
# Packs an lmdrive tarball: bin/lmdrive, lib/lmdrive/ (the engine libraries,
# every shared library they need that is not a system library, and the
# Python worker), docs/, README.md, licenses/ and SHA256SUMS (of every file
# inside); then writes <out>/<name>.tar.gz and refreshes <out>/SHA256SUMS
# (of every tarball there).
#
# Reproducible: files are sorted, owned by 0:0, dated <epoch> (the commit's
# date), with fixed modes, and gzip writes no name or time; the same inputs
# give the same bytes (checked by repro-test.sh).
#
# System libraries are not bundled: the C library and the dynamic loader,
# libstdc++ and libgcc_s, and the NVIDIA driver's libraries (the
# DIST_SYSTEM_LIBS patterns; add more to rely on the host for them). Every
# other library an engine library needs is copied beside it, where its
# RUNPATH ($ORIGIN) finds it; a library without $ORIGIN in its RUNPATH that
# needs one is an error, since the bundled copy would not be found.
#
# Usage: pack.sh --name <name> --bin <lmdrive> --libdir <engine libraries>
#                --out <dir> --epoch <seconds> --cgo <0|1> [--pyworker <dir>]
set -euo pipefail

die() { echo "pack: $*" >&2; exit 1; }

name="" bin="" libdir="" out="" epoch="" cgo="" pyworker=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--name) name=$2 ;;
	--bin) bin=$2 ;;
	--libdir) libdir=$2 ;;
	--out) out=$2 ;;
	--epoch) epoch=$2 ;;
	--cgo) cgo=$2 ;;
	--pyworker) pyworker=$2 ;;
	*) die "unknown argument $1" ;;
	esac
	shift 2
done
[[ -n $name && -n $bin && -n $libdir && -n $out && -n $epoch && -n $cgo ]] ||
	die "usage: $0 --name N --bin FILE --libdir DIR --out DIR --epoch SECONDS --cgo 0|1 [--pyworker DIR]"
[[ -x $bin ]] || die "$bin is not built"
compgen -G "$libdir/liblmdrive_*.so" >/dev/null || die "no engine library in $libdir (make native)"
for tool in readelf ldd sha256sum tar gzip; do
	command -v $tool >/dev/null || die "$tool is not installed"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
system_libs=${DIST_SYSTEM_LIBS:-"linux-vdso.so.* ld-linux-*.so.* libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libresolv.so.2 libutil.so.1 libstdc++.so.6 libgcc_s.so.1 libcuda.so.1 libnvidia-*.so.*"}

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
mkdir -p "$root/bin" "$root/lib/lmdrive"
cp "$bin" "$root/bin/lmdrive"
cp "$libdir"/liblmdrive_*.so "$root/lib/lmdrive/"

is_system() {
	local pat
	for pat in $system_libs; do
		# shellcheck disable=SC2053  # a glob on purpose
		[[ $1 == $pat ]] && return 0
	done
	return 1
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
runpath() { readelf -d "$1" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p'; }

# Bundle what the engine libraries need, then what the bundled ones need.
# A bundled library's own needs are resolved where it came from.
bundled=()
declare -A origin
queue=()
for f in "$root"/lib/lmdrive/*.so; do
	origin[$f]=$libdir/$(basename "$f")
	queue+=("$f")
done
while [[ ${#queue[@]} -gt 0 ]]; do
	f=${queue[0]}
	queue=("${queue[@]:1}")
	for lib in $(needed "$f"); do
		is_system "$lib" && continue
		if [[ $(runpath "$f") != *'$ORIGIN'* ]]; then
			die "$(basename "$f") needs $lib, but its RUNPATH ('$(runpath "$f")') lacks \$ORIGIN, so a copy beside it would not be found: link it with -Wl,-rpath,'\$ORIGIN', or add $lib to DIST_SYSTEM_LIBS to take it from the host"
		fi
		[[ -e $root/lib/lmdrive/$lib ]] && continue
		src=$(ldd "${origin[$f]}" | awk -v n="$lib" '$1 == n && $3 ~ /^\// {print $3}')
		[[ -n $src ]] || die "$(basename "$f") needs $lib, which this host cannot find (ldd ${origin[$f]})"
		cp "$(readlink -f "$src")" "$root/lib/lmdrive/$lib"
		bundled+=("$src")
		origin[$root/lib/lmdrive/$lib]=$src
		queue+=("$root/lib/lmdrive/$lib")
		echo "pack: bundled $lib (from $src) for $(basename "$f")"
	done
done
for lib in $(needed "$root/bin/lmdrive"); do
	is_system "$lib" || die "bin/lmdrive needs $lib, which is not a system library (DIST_SYSTEM_LIBS); bundling it would need an RPATH on the binary"
done

if [[ -n $pyworker && -d $pyworker ]]; then
	mkdir -p "$root/lib/lmdrive/pyworker"
	(cd "$pyworker" && find . -type f ! -path './tests/*' ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
		xargs -0 -r cp --parents -t "$root/lib/lmdrive/pyworker")
	echo "pack: Python worker from $pyworker"
elif [[ -n $pyworker ]]; then
	echo "pack: no Python worker at $pyworker; the tarball carries none"
fi

# The oldest glibc every shipped file accepts: the newest GLIBC_ symbol
# version any of them asks for.
floor="" floor_by=""
for f in "$root/bin/lmdrive" "$root"/lib/lmdrive/*.so*; do
	# (none for the cgo-free binary: Go's linker asks for unversioned symbols)
	v=$(readelf -V -W "$f" | { grep -o 'GLIBC_[0-9][0-9.]*' || true; } | sed 's/GLIBC_//' | sort -uV | tail -n 1)
	[[ -n $v ]] || continue
	if [[ -z $floor || $(printf '%s\n%s\n' "$floor" "$v" | sort -V | tail -n 1) != "$floor" ]]; then
		floor=$v floor_by=$(basename "$f")
	elif [[ $v == "$floor" ]]; then
		floor_by="$floor_by, $(basename "$f")"
	fi
done
{
	"$bin" --version | sed 's/^lmdrive version /lmdrive /'
	echo "cgo: $cgo"
	echo "go: $(go env GOVERSION)"
	echo "c++: $(${CXX:-c++} --version | head -n 1)"
	echo "glibc: $floor or later (asked for by $floor_by)"
	echo "bundled: $(cd "$root/lib/lmdrive" && ls | grep -v '^liblmdrive_' | grep -v '^pyworker$' | paste -sd ' ' || true)"
} >"$root/BUILDINFO"
echo "pack: needs glibc $floor or later ($floor_by)"

cp -r "$repo/docs" "$repo/README.md" "$root/"
native=1
bash "$here/licenses.sh" "$root/licenses" "$cgo" "$native" ${bundled[@]+"${bundled[@]}"}

# Fixed modes and dates, then the checksums of every file.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/bin/lmdrive" "$root"/lib/lmdrive/*.so*
(cd "$root" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >"$stage/SHA256SUMS" && mv "$stage/SHA256SUMS" SHA256SUMS)
chmod 0644 "$root/SHA256SUMS"
find "$root" -exec touch -h -d "@$epoch" {} +

tarball=$out/$name.tar.gz
LC_ALL=C tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
	-C "$stage" -cf - "$name" | gzip -9n >"$tarball.tmp"
mv -f "$tarball.tmp" "$tarball"
(cd "$out" && find . -maxdepth 1 -name 'lmdrive-*.tar.gz' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS)
echo "pack: wrote $tarball ($(du -h "$tarball" | cut -f1)), $(grep -c . "$root/SHA256SUMS") files"
