#!/usr/bin/env bash
# Runs every fuzz target for a fixed budget: `make fuzz` (60s each), or
# `make fuzz FUZZTIME=1000000x` for a number of executions, as Go's
# -fuzztime takes it. Go targets use `go test -fuzz`; the C++ readers of the
# reference engine use libFuzzer (clang with its runtime, e.g. Debian's
# clang and libclang-rt-dev) and, where it is missing, replay their seeds.
# Each target's execution count is printed at the end.
set -euo pipefail
budget=${1:-60s}
cd "$(dirname "$0")/.."
build=${BUILD:-build}
summary=()

go_targets=(
	"./driver FuzzDecodeEvent"            # runner protocol: events the parent decodes
	"./driver/checkpoint FuzzParseConfig" # config.json before loading
	"./bench FuzzReadRecords"             # results JSON Lines reader
	"./bench FuzzWriterAppend"            # results writer on damaged files
	"./tokenize FuzzOpenTokenizerJSON"    # tokenizer.json loading, every backend
)
# fuzz_go <pkg> <name> <log>: one go test -fuzz run, its output in log.
fuzz_go() {
	go test -timeout 0 -run '^$' -fuzz "^${2}\$" -fuzztime "$budget" "$1" >"$3" 2>&1
	local rc=$?
	grep -v '^fuzz: elapsed' "$3"
	[[ $rc -eq 0 ]] && grep -q '^ok' "$3"
}

# Go's fuzzer sometimes reports a worker that "hung or terminated
# unexpectedly" on an input that then passes on its own (golang/go#52569,
# #56238). Such a report is re-run once: an input that fails alone, or a
# second report, fails the target.
for t in "${go_targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $name ($pkg, $budget)"
	log=$(mktemp)
	if ! fuzz_go "$pkg" "$name" "$log"; then
		input=$(sed -n "s|^ *Failing input written to \(testdata/fuzz/$name/[0-9a-f]*\)\$|\1|p" "$log" | head -1)
		if ! grep -q 'fuzzing process hung or terminated unexpectedly' "$log" || [[ -z $input ]] ||
			! go test -count=1 -run "^$name\$/^${input##*/}\$" "$pkg" >/dev/null 2>&1; then
			echo "fuzz target $name failed"
			exit 1
		fi
		echo "$name: the fuzzer's worker stopped on $pkg/$input, which passes on its own (golang/go#56238): fuzzing again"
		rm -f "$pkg/$input"
		if ! fuzz_go "$pkg" "$name" "$log"; then
			echo "fuzz target $name failed"
			exit 1
		fi
	fi
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
	summary+=("$name: ${execs:-?} executions")
	rm -f "$log"
done

case $budget in
*x) libfuzzer_budget=(-runs="${budget%x}") ;;
*s) libfuzzer_budget=(-max_total_time="${budget%s}") ;;
*m) libfuzzer_budget=(-max_total_time=$((${budget%m} * 60))) ;;
*) echo "FUZZTIME $budget: give seconds (60s), minutes (5m) or executions (1000000x)"; exit 2 ;;
esac
if command -v clang++ >/dev/null && echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, long) { return 0; }' |
	clang++ -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
	log=$(mktemp)
	if ! { cmake -S . -B "$build/fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CXX_FLAGS="-g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
		-DLMDRIVE_FUZZ=ON -DLMDRIVE_REF_CUDA=OFF -DLMDRIVE_REF_OPENMP=OFF -DLMDRIVE_LIB_DIR="$PWD/$build/fuzz/lib" &&
		cmake --build "$build/fuzz" -j "$(nproc)" --target fuzz_safetensors fuzz_model_config; } >"$log" 2>&1; then
		tail -40 "$log"
		echo "building the libFuzzer targets failed"
		exit 1
	fi
	rm -f "$log"
	for name in safetensors model_config; do
		echo "== fuzz_$name (libFuzzer, $budget)"
		corpus=$build/fuzz/corpus/$name
		mkdir -p "$corpus"
		log=$(mktemp)
		if ! "$build/fuzz/native/ref/fuzz/fuzz_$name" "${libfuzzer_budget[@]}" -print_final_stats=1 -rss_limit_mb=4096 \
			"$corpus" "native/ref/fuzz/corpus/$name" >"$log" 2>&1; then
			tail -40 "$log"
			echo "fuzz target fuzz_$name failed (crash input saved in the working folder as crash-*)"
			exit 1
		fi
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}')
		summary+=("fuzz_$name: ${execs:-?} executions")
		rm -f "$log"
	done
else
	echo "== clang with libFuzzer not found: the C++ targets replay their seeds only (install clang and libclang-rt-dev to fuzz them)"
	cmake --build "$build/cmake" --target fuzz_safetensors fuzz_model_config >/dev/null
	for name in safetensors model_config; do
		"$build/cmake/native/ref/fuzz/fuzz_$name" "native/ref/fuzz/corpus/$name"
	done
fi
printf '%s\n' "== executions without a failure" "${summary[@]}"
