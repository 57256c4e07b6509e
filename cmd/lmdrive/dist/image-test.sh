#!/usr/bin/env bash
# Proves that lmdrive tarballs run on a minimal system: makes a Debian root
# file system with debootstrap --variant=minbase (no compiler, no libgomp,
# no Python), unpacks each tarball under /opt, and inside it, in a chroot
# without network (a new, empty network namespace), runs lmdrive --version,
# sha256sum -c, lmdrive doctor (text, JSON, and its exit status for an engine
# that cannot be there), lmdrive engines and a CPU benchmark of the ref
# engine, then checks the results file and the report made from it.
#
# The root file system is downloaded once and kept as a tarball in
# IMAGE_CACHE (default ~/.cache/lmdrive); later runs unpack it afresh.
# Release: IMAGE_SUITE, default the build host's own (the binaries need a
# glibc at least as new as the one they were built against).
# Needs root (debootstrap, chroot, mount) and, the first time, Debian's
# mirror (IMAGE_MIRROR).
#
# Writes <work>/summary.md (docs/dist.md shows the last one) and a log per
# tarball. Usage: image-test.sh <tarball>...
set -euo pipefail

die() { echo "image-test: $*" >&2; exit 1; }
[[ $# -ge 1 ]] || die "usage: $0 <tarball>..."
[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, mount); run it as root"
for tool in debootstrap unshare chroot; do
	command -v $tool >/dev/null || die "$tool is missing (apt-get install debootstrap util-linux coreutils)"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# The ABI version lmdrive engines must report: the header's.
abi=$(sed -n 's/^#define LMDRIVE_ABI_MAJOR \([0-9]*\).*/\1/p' "$repo/native/include/lmdrive.h").$(sed -n 's/^#define LMDRIVE_ABI_MINOR \([0-9]*\).*/\1/p' "$repo/native/include/lmdrive.h")
work=$repo/${BUILD:-build}/image-test
suite=${IMAGE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
mirror=${IMAGE_MIRROR:-http://deb.debian.org/debian}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cache=${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lmdrive}
rootfs_tar=$cache/debian-$suite-minbase-$arch.tar
root=$work/root
summary=$work/summary.md

tarballs=()
for t in "$@"; do
	[[ -f $t ]] || die "$t does not exist (make dist dist-static)"
	tarballs+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")")
done

rm -rf "$work"
mkdir -p "$work" "$cache"
t0=$(date +%s)
if [[ ! -f $rootfs_tar ]]; then
	echo "image-test: debootstrap --variant=minbase $suite from $mirror (once; kept in $rootfs_tar)"
	fresh=$work/debootstrap
	debootstrap --variant=minbase --arch="$arch" "$suite" "$fresh" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log"; die "debootstrap failed (log: $work/debootstrap.log)"; }
	rm -rf "$fresh"/var/cache/apt/archives/*.deb
	tar --numeric-owner -C "$fresh" -cf "$rootfs_tar.tmp" .
	mv "$rootfs_tar.tmp" "$rootfs_tar"
	rm -rf "$fresh"
	rootfs_how="made with debootstrap in $(($(date +%s) - t0)) s"
else
	rootfs_how="unpacked from the cache"
fi
mkdir -p "$root"
tar --numeric-owner -C "$root" -xf "$rootfs_tar"
t1=$(date +%s)
rootfs_size=$(du -sh --exclude=./opt "$root" | cut -f1)
echo "image-test: root file system ready ($rootfs_how, $rootfs_size)"

# What a minimal system lacks, so that a passing run means the tarball
# carried it.
for lib in libgomp.so.1 libpython3 ; do
	if compgen -G "$root/usr/lib/*/$lib*" >/dev/null || compgen -G "$root/lib/*/$lib*" >/dev/null; then
		die "the root file system has $lib; it must not, for this test to mean anything"
	fi
done
[[ ! -e $root/usr/bin/python3 ]] || die "the root file system has python3"

# in_root <script>: runs sh -c <script> chrooted, with /proc mounted in a
# private mount namespace and no network (a new network namespace with only
# a loopback that is down).
in_root() {
	unshare --mount --net --fork sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"' sh "$root" "$1"
}

fail=0
check() {  # check <description> <command...>
	local what=$1
	shift
	if "$@"; then
		echo "  ok    $what"
	else
		echo "  FAIL  $what"
		fail=1
	fi
}

{
	echo "Root file system: Debian $suite minbase ($arch), $rootfs_size, $rootfs_how."
	echo "Host: $(uname -sr), $(nproc) CPUs; $(date -u +'%Y-%m-%d %H:%M UTC')."
	echo
} >"$summary"

for tarball in "${tarballs[@]}"; do
	name=$(basename "$tarball" .tar.gz)
	log=$work/$name.log
	opt=/opt/$name
	rm -rf "$root/opt/$name" "$root/root/out"
	tar -C "$root/opt" -xzf "$tarball"
	ln -sfn "$opt/bin/lmdrive" "$root/usr/local/bin/lmdrive"
	echo "image-test: $name"
	ts=$(date +%s)
	# Every command's output goes to the log; the checks below read it.
	in_root "
		set -u
		mkdir -p /root/out && cd /root/out
		echo '== sha256sum -c'; (cd $opt && sha256sum -c --quiet SHA256SUMS); echo \"exit \$?\"
		echo '== lmdrive --version'; lmdrive --version
		echo '== ldd'; ldd $opt/bin/lmdrive $opt/lib/lmdrive/*.so
		echo '== doctor'; lmdrive doctor; echo \"exit \$?\"
		lmdrive doctor --json >/root/out/doctor.json; echo \"doctor json exit \$?\"
		echo '== doctor --engines ref,hf'; lmdrive doctor --engines ref,hf >/root/out/doctor-hf.txt 2>&1; echo \"exit \$?\"
		echo '== engines'; lmdrive engines
		echo '== run'; lmdrive run --engine ref --model random:tiny --prompt-tokens 256 --max-new 32 --ignore-eos \
			--warmup 1 --repeats 2 --out /root/out/ref-cpu.jsonl; echo \"run exit \$?\"
		echo '== report'; lmdrive report /root/out/ref-cpu.jsonl
	" >"$log" 2>&1 || true
	secs=$(($(date +%s) - ts))
	out=$root/root/out
	version=$("$root$opt/bin/lmdrive" --version 2>/dev/null | awk '{print $3}')
	results=$out/ref-cpu.jsonl
	section() { sed -n "/^== $1\$/,/^== /p" "$log"; }
	count() { grep -cF -- "$1" "$results" || true; }
	check "every file matches SHA256SUMS" grep -qx 'exit 0' <(section 'sha256sum -c')
	check "--version names version, commit and date" \
		grep -Eq "^lmdrive version $version \([0-9a-f]+, [0-9]{4}-[0-9]{2}-[0-9]{2}T" <(section 'lmdrive --version')
	check "no library is missing (ldd)" bash -c '! grep -q "not found" "$1"' _ <(section ldd)
	check "libgomp comes from the tarball" grep -q "libgomp.so.1 => $opt/lib/lmdrive/libgomp.so.1" <(section ldd)
	check "doctor: ready for ref" grep -qx 'ready for ref' <(section doctor)
	check "doctor: exit status 0" grep -qx 'exit 0' <(section doctor)
	check "doctor --json: ready" grep -q '"ready": true' "$out/doctor.json"
	check "doctor --engines ref,hf: python MISSING" grep -q '^MISSING  python ' "$out/doctor-hf.txt"
	check "doctor --engines ref,hf: exit status 2" grep -qx 'exit 2' <(section 'doctor --engines ref,hf')
	check "engines: ref ok, ABI $abi, from the tarball" \
		grep -Eq "^ref +ok +${abi//./\\.} +ref-cpu +$opt/lib/lmdrive/liblmdrive_ref.so" <(section engines)
	check "run: exit status 0" grep -qx 'run exit 0' <(section run)
	check "results: 2 records with status ok" test "$(count '"status":"ok"')" = 2
	check "results: 32 tokens each" test "$(count '"output_tokens":32,')" = 2
	check "results: the tarball's library" test "$(count "\"library\":\"$opt/lib/lmdrive/liblmdrive_ref.so\"")" = 2
	check "results: the tarball's version" test "$(count "\"version\":\"$version\"")" = 2
	check "report: the digest row" grep -qF '| ref (ref-cpu, random:tiny, ignore_eos) | 0.256k->0.032k |' <(section report)
	{
		echo "### $name ($(du -h "$tarball" | cut -f1), $secs s inside)"
		echo
		echo '```'
		sed -n '/^== doctor$/,/^exit /p;/^== engines/,/^== run/p' "$log" | grep -v '^== run'
		grep -F '| ref (ref-cpu' "$log" | head -1
		echo '```'
		echo
	} >>"$summary"
done
total=$(($(date +%s) - t0))
echo "Total: $total s (root file system $((t1 - t0)) s)." >>"$summary"
echo "image-test: $total s in all; summary in $summary"
[[ $fail == 0 ]] || die "some checks failed; logs in $work"
