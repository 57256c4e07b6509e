#!/usr/bin/env bash
# The GPU check of the ref engine's CUDA backend, end to end, in one device
# run on one GPU (about 8-9 minutes on an H200 for the default steps): builds
# the engine libraries and the kernel check, checks every kernel against its
# alternative and a reference, runs the parity checks against transformers,
# measures the floors (copy bandwidth, the prefill GEMMs and attention alone,
# matrix-vector streaming), the ref engine at 14B 10k→800 and 32B 20k→1000,
# an A/B run per switch, transformers (eager, and with a static cache and
# compiled decoding) and the CPU default, then prints each bar as met or
# missed with its ratio (summarize.py). Full logs and JSON stay in OUT-DIR.
#
# usage (from the repository root, on a machine with nvcc, cmake, PyTorch and
# transformers):
#   bash native/ref/cuda/gpu_check.sh path/to/lmdrive [OUT-DIR]
# Environment:
#   LMDREF_CHECK_STEPS (or STEPS)  the steps to run, in this order (default:
#                     build doctor kernels parity floors run14 pre14 run32 ab14
#                     hf14 hfstatic14 cpu); also: profile (a decode step and a
#                     10k prefill under Nsight Compute), tp14 abtp14 run72 (two GPUs or more),
#                     omp (the CPU backend with OpenMP and with std::thread,
#                     docs/dist.md), batchparity (batched generation against
#                     each request alone), batch14 (14B at batch 1, 8, 32, 64 with
#                     batch_bars.py, which needs the floors or the quant step
#                     in the same run), load14 (14B, 16 requests in flight
#                     until 200 have run), cpuparity (the CPU engine against
#                     transformers on the CPU), quant (int8/fp8 weights with
#                     their fp16 baseline, quant_bars.py), digest (the example
#                     digest, docs/plans/h200-digest.sh), readme (the gpus
#                     command's GPU path and, on two GPUs or more, every README
#                     line, the GPU ones too, with the cmd/lmdrive test binary:
#                     go test -c -o build/cmd-lmdrive.test ./cmd/lmdrive).
#                     Steps write OUT-DIR/<step>.* and can run in separate
#                     calls with the same OUT-DIR; the summary reads them all.
#   LMDREF_CHECK_ARCHS  CUDA architectures (default: the first GPU's, with
#                     sm_90a on Hopper)
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash native/ref/cuda/gpu_check.sh path/to/lmdrive [out-dir]" >&2
  exit 2
fi
BIN=$(readlink -f "$1")
OUTD=${2:-build/gpu-check}
mkdir -p "$OUTD"
OUTD=$(readlink -f "$OUTD")
LOG=$OUTD/gpu_check.log
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
HERE=native/ref/cuda
BUILD=build/gpu
LIB=$PWD/$BUILD/lib
STEPS=${LMDREF_CHECK_STEPS:-${STEPS:-build doctor kernels parity floors run14 pre14 run32 ab14 hf14 hfstatic14 cpu}}
# The GPUs are shared: never NVLink multicast (NCCL NVLS) from this script.
export NCCL_NVLS_ENABLE=0
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
GPU_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | sort -n | head -1)
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
# LMDREF_CUDA_* names the engine's switches only (the engine refuses other
# names): the architectures are LMDREF_CHECK_ARCHS (LMDREF_CUDA_ARCHS is read once).
ARCHS=${LMDREF_CHECK_ARCHS:-${LMDREF_CUDA_ARCHS:-}}
unset LMDREF_CUDA_ARCHS
if [ -z "$ARCHS" ]; then
  case "$CAP" in 90) ARCHS=90a ;; "") ARCHS="80;90a" ;; *) ARCHS=$CAP ;; esac
fi
export LMDREF_CHECK_GPUS=$NGPU
FAILED=""

want() { [[ " $STEPS " == *" $1 "* ]]; }
phase() { echo "== $(date -u +%H:%M:%S) $*"; }
step_failed() { FAILED="$FAILED $1"; echo "!! step $1 failed (rc=$2)"; }

phase "environment (steps: $STEPS)"
date -u +"%Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=index,name,memory.total,driver_version,compute_cap --format=csv,noheader
nvcc --version | tail -1
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
nproc
echo "NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-unset} archs=$ARCHS"
"$BIN" gpus --json >"$OUTD/gpus.json" 2>/dev/null || true

if want build; then
  phase "build"
  mkdir -p $BUILD
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_LIB_DIR="$LIB" \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" >"$BUILD/cmake.log" 2>&1 &&
    grep -E "lmdrive" "$BUILD/cmake.log" &&
    cmake --build $BUILD -j"$(nproc)" --target lmdrive_ref lmdrive_ref_cuda lmdref_kernel_check \
      >>"$BUILD/cmake.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    tail -40 "$BUILD/cmake.log"
    echo "!! build failed"
    exit 1
  fi
  ls -l "$LIB"
fi

if want doctor; then  # what lmdrive doctor says on a GPU host (docs/doctor.md), and what the plugin links
  phase "doctor"
  tp=1
  [ "$NGPU" -ge 2 ] && tp=2
  "$BIN" doctor --lib-path "$LIB" --engines ref,hf --device cuda --tp $tp --json >"$OUTD/doctor-gpu.json"
  echo "doctor --json exit $?"
  "$BIN" doctor --lib-path "$LIB" --engines ref,hf --device cuda --tp $tp | tee "$OUTD/doctor-gpu.txt"
  echo "doctor exit ${PIPESTATUS[0]}"
  { readelf -d "$LIB/liblmdrive_ref_cuda.so" | grep -E "NEEDED|RUNPATH"; ldd "$LIB/liblmdrive_ref_cuda.so"; } |
    tee "$OUTD/ref-cuda-deps.txt"
fi

if want omp; then  # the CPU backend's threads: OpenMP (the default build) against std::thread
  phase "omp: CPU backend, OpenMP vs std::thread, $(nproc) CPUs"
  if cmake -S . -B build/gpu-noomp -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_REF_OPENMP=OFF -DLMDRIVE_REF_CUDA=OFF \
    -DLMDRIVE_LIB_DIR="$PWD/build/gpu-noomp/lib" >/dev/null &&
    cmake --build build/gpu-noomp -j"$(nproc)" --target lmdrive_ref >/dev/null; then
    for round in 1 2; do
      for v in "openmp:$LIB" "threads:$PWD/build/gpu-noomp/lib"; do
        timeout 120 "$BIN" run --engine ref --device cpu --lib-path "${v#*:}" --model random:qwen2.5-0.5b \
          --prompt-tokens 512 --max-new 64 --ignore-eos --warmup 1 --repeats 3 --label "0.5b ${v%%:*}" \
          --out "$OUTD/cpu-omp.jsonl" >/dev/null 2>&1 || step_failed omp $?
        timeout 60 "$BIN" run --engine ref --device cpu --lib-path "${v#*:}" --model random:tiny \
          --prompt-tokens 2048 --max-new 256 --ignore-eos --warmup 1 --repeats 3 --label "tiny ${v%%:*}" \
          --out "$OUTD/cpu-omp.jsonl" >/dev/null 2>&1 || step_failed omp $?
      done
    done
    "$BIN" report "$OUTD/cpu-omp.jsonl"
  else
    step_failed omp $?
  fi
fi

# The kernel check decides which new kernels later steps may try (the
# defaults are the measured ones; the new forms run only in the parity and
# A/B steps): an alternative whose check failed, or a check that did not
# finish (a kernel that hangs is killed by the timeout), here or in an
# earlier call with this OUT-DIR, goes to LMDREF_CHECK_SKIP and is not run.
if want kernels; then
  phase "kernels: each against its alternative and a reference, then timed"
  rm -f "$OUTD/kernels.json"
  timeout 150 "$LIB/lmdref_kernel_check" "$OUTD/kernels.json"
  rc=$?
  [ $rc -eq 0 ] || step_failed kernels $rc
  if [ ! -f "$OUTD/kernels.json" ]; then
    echo '{"hopper_prefill_attention": "FAIL", "checks": 0, "failed": 1, "results": [{"kind": "check", "what": "stream, decode attention combine: the check did not finish", "ok": false, "figures": ""}]}' >"$OUTD/kernels.json"
    echo "!! the kernel check did not finish (rc=$rc): every new kernel counts as failed"
  fi
fi
export LMDREF_CHECK_SKIP=""
if [ -f "$OUTD/kernels.json" ]; then
  # The Hopper prefill attention is the default: a failed check turns it off
  # for every later step (the engine then runs mma.sync).
  grep -q '"hopper_prefill_attention": "FAIL"' "$OUTD/kernels.json" &&
    LMDREF_CHECK_SKIP="$LMDREF_CHECK_SKIP LMDREF_CUDA_PREFILL_ATTN=mma" && export LMDREF_CUDA_PREFILL_ATTN=mma
  grep '"ok": false' "$OUTD/kernels.json" | grep -qE 'stream|gate\|up|q\|k\|v' &&
    LMDREF_CHECK_SKIP="$LMDREF_CHECK_SKIP LMDREF_CUDA_GEMV=stream"
  grep '"ok": false' "$OUTD/kernels.json" | grep -q 'decode attention combine' &&
    LMDREF_CHECK_SKIP="$LMDREF_CHECK_SKIP LMDREF_CUDA_COMBINE=merged"
  [ -n "$LMDREF_CHECK_SKIP" ] && echo "!! failed their kernel check, not run:$LMDREF_CHECK_SKIP"
fi

run_ref() {  # name, timeout, lmdrive run args...  (A/B runs: name ab:<label>)
  local name=$1 limit=$2 out
  shift 2
  phase "ref $name"
  if [[ $name == ab:* ]]; then
    out=(--out "$OUTD/run-ab.jsonl" --label "${name#ab:}")
  else
    out=(--out "$OUTD/run-$name.jsonl")
  fi
  timeout "$limit" "$BIN" run --engine ref --device cuda --lib-path "$LIB" --ignore-eos \
    "${out[@]}" "$@" 2>&1 | grep -v "^  engine| $" | tail -12
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || step_failed "$name" "$rc"
}

if want parity; then
  phase "parity"
  # The quantized cases run with the quant step (issue 15), not otherwise.
  if want quant; then export LMDREF_PARITY_QUANT=1; else export LMDREF_PARITY_QUANT=0; fi
  timeout 480 python3 $HERE/parity.py "$LIB" "$BIN" "$PWD/$BUILD/parity" "$OUTD/parity.json" ||
    step_failed parity $?
fi

if want batchparity; then  # batched generation gives each request its tokens alone
  phase "batch parity"
  timeout 300 python3 $HERE/batch_parity.py "$LIB" "$OUTD/batch_parity.json" ||
    step_failed batchparity $?
fi

if want floors; then
  phase "floors: copy bandwidth, prefill GEMMs alone, attention alone, matrix-vector"
  rm -f "$OUTD/floors.jsonl"
  timeout 240 python3 $HERE/bench_torch.py floors qwen2.5-14b 10000 20000 | tee "$OUTD/floors.jsonl"
  [ "${PIPESTATUS[0]}" -eq 0 ] || step_failed floors "${PIPESTATUS[0]}"
fi

if want run14; then
  rm -f "$OUTD/run-14b.jsonl"
  run_ref 14b 150 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 800 --warmup 1 --repeats 2
fi

if want pre14; then  # the prefill at 20k (and with run14's 10k, the attention's share)
  rm -f "$OUTD/run-14b-20k.jsonl"
  run_ref 14b-20k 100 --model random:qwen2.5-14b --prompt-tokens 20000 --max-new 16 --warmup 1 --repeats 1
fi

if want run32; then
  rm -f "$OUTD/run-32b.jsonl"
  run_ref 32b 200 --model random:qwen2.5-32b --prompt-tokens 20000 --max-new 1000 --warmup 1 --repeats 1
fi

if want ab14; then  # each switch's other value against the default, same settings
  rm -f "$OUTD/run-ab.jsonl"
  run_ref "ab:default" 80 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 100 \
    --warmup 1 --repeats 1
  # (CHOICE=host and PDL=0 were measured in earlier runs: docs/benchmarks.md)
  for ab in LMDREF_CUDA_GEMV=stream LMDREF_CUDA_COMBINE=merged LMDREF_CUDA_AHEAD=0 \
    LMDREF_CUDA_PREFILL_ATTN=mma; do
    if [[ " $LMDREF_CHECK_SKIP " == *" $ab "* ]]; then
      echo "A/B $ab left out: its kernel check failed"
      continue
    fi
    export "${ab?}"
    run_ref "ab:${ab#LMDREF_CUDA_}" 80 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 100 \
      --warmup 1 --repeats 1
    unset "${ab%%=*}"
  done
fi

if want hf14; then
  phase "transformers 14B, eager (sdpa, dynamic cache)"
  rm -f "$OUTD/hf.jsonl"
  timeout 180 python3 $HERE/bench_torch.py hf qwen2.5-14b 10000 64 | tee "$OUTD/hf.jsonl"
  [ "${PIPESTATUS[0]}" -eq 0 ] || step_failed hf14 "${PIPESTATUS[0]}"
fi

if want hfstatic14; then
  phase "transformers 14B, static cache and compiled decoding"
  rm -f "$OUTD/hfstatic.jsonl"
  timeout 240 python3 $HERE/bench_torch.py hfstatic qwen2.5-14b 10000 64 | tee "$OUTD/hfstatic.jsonl"
  [ "${PIPESTATUS[0]}" -eq 0 ] || step_failed hfstatic14 "${PIPESTATUS[0]}"
fi

if want cpu; then  # the CPU backend's default against one thread, on two CPUs and on all
  phase "cpu: random:tiny 2048 -> 256 (make run's workload)"
  rm -f "$OUTD"/cpu-*.jsonl
  cpu_run() {  # label, cpus (taskset list or "all"), threads
    local pin=()
    [ "$2" = all ] || pin=(taskset -c "$2")
    timeout 60 "${pin[@]}" "$BIN" run --engine ref --lib-path "$LIB" --threads "$3" --model random:tiny \
      --prompt-tokens 2048 --max-new 256 --ignore-eos --warmup 1 --repeats 3 \
      --out "$OUTD/cpu-$1.jsonl" >/dev/null 2>&1 || step_failed "cpu-$1" $?
  }
  for round in 1 2; do  # interleaved
    cpu_run 2cpus-1thread 0,1 1
    cpu_run 2cpus-default 0,1 0
    cpu_run all-1thread all 1
    cpu_run all-default all 0
  done
fi

# The load runs of issue 16: 14B, 1k prompts of random ids -> 256 tokens each.
LOAD14=(run --engine ref --device cuda --lib-path "$LIB" --ignore-eos --model random:qwen2.5-14b
  --prompt-source ids --prompt-tokens 1024 --max-new 256)

if want batch14; then  # many requests at once: batch 1, 8, 32, 64
  phase "batch 14B"
  for b in 1 8 32 64; do
    timeout 240 "$BIN" "${LOAD14[@]}" --batch "$b" --warmup 1 --repeats 1 --out "$OUTD/run-batch14.jsonl" 2>&1 |
      grep -v "^  engine| $" | tail -6
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || step_failed "batch14-b$b" "$rc"
  done
  phase "batch bars"
  python3 $HERE/batch_bars.py "$OUTD" || step_failed batchbars $?
fi

if want load14; then  # closed loop: 16 requests in flight until 200 have run (issue 16)
  phase "load 14B: concurrency 16, 200 requests of 1k -> 256"
  rm -f "$OUTD/run-load14.jsonl"
  timeout 300 "$BIN" "${LOAD14[@]}" --concurrency 16 --requests 200 --out "$OUTD/run-load14.jsonl" 2>&1 |
    grep -v "^  engine| $" | tail -12
  [ "${PIPESTATUS[0]}" -eq 0 ] || step_failed load14 "${PIPESTATUS[0]}"
fi

if want profile; then  # where a decode step's and a prefill's time go, kernel by kernel (Nsight Compute)
  phase "profile: one 14B decode step under ncu"
  NCU_DIR=$(ls -d /opt/nvidia/nsight-compute/*/ 2>/dev/null | tail -1)
  if command -v ncu >/dev/null || [ -n "$NCU_DIR" ]; then
    PATH=$PATH:${NCU_DIR:-/nonexistent} timeout 300 python3 $HERE/profile_decode.py "$LIB" \
      "$OUTD/ncu-decode-14b.csv" qwen2.5-14b 10000 || step_failed profile $?
    phase "profile: one 14B prefill of 10k tokens under ncu"
    PATH=$PATH:${NCU_DIR:-/nonexistent} timeout 300 python3 $HERE/profile_decode.py --prefill "$LIB" \
      "$OUTD/ncu-prefill-14b.csv" qwen2.5-14b 10000 || step_failed profile-prefill $?
  else
    echo "ncu not found: profile skipped"
  fi
fi

if want tp14 && [ "$NGPU" -ge 2 ]; then
  rm -f "$OUTD/run-14b-tp2.jsonl"
  run_ref 14b-tp2 120 --tp 2 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 800 \
    --warmup 1 --repeats 2
fi

if want abtp14 && [ "$NGPU" -ge 2 ]; then  # A/B: no early kernel start at TP=2
  LMDREF_CUDA_PDL=0 run_ref "ab:14b-tp2 PDL=0" 100 --tp 2 --model random:qwen2.5-14b \
    --prompt-tokens 10000 --max-new 200 --warmup 1 --repeats 2
fi

if want run72 && [ "$NGPU" -ge 2 ] && [ "${GPU_MIB:-0}" -ge 100000 ]; then
  rm -f "$OUTD/run-72b-tp2.jsonl"
  run_ref 72b-tp2 400 --tp 2 --model random:qwen2.5-72b --prompt-tokens 20000 --max-new 1000 \
    --warmup 1 --repeats 1
fi

if want cpuparity; then  # the CPU backend against transformers (fp32, int8): needs no GPU
  phase "cpuparity: CPU engine vs transformers on the CPU"
  timeout 400 python3 native/ref/tests/hf_parity.py "$LIB/liblmdrive_ref.so" "$OUTD/hf_parity_cpu.json" ||
    step_failed cpuparity $?
fi

if want quant; then  # weight-only int8 (and fp8 on sm_90), one GPU, with its fp16 baseline
  phase "quant: quantizer check, copy bandwidth, fp16 / int8 / fp8 on 14B and 32B"
  python3 native/ref/quant_ref.py check "$LIB/liblmdrive_ref.so" || step_failed quant-ref $?
  timeout 60 python3 $HERE/bench_torch.py copybw | tee "$OUTD/quant-torch.jsonl"
  CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1)
  FORMATS="fp16 int8"
  QFORMATS=int8
  if [ "${CAP%%.*}" -ge 9 ] 2>/dev/null; then
    FORMATS="$FORMATS fp8"
    QFORMATS="int8 fp8"
  fi
  # Each quantized decode kernel alone: its weight bandwidth against the copy bandwidth.
  timeout 60 python3 $HERE/quant_check.py "$LIB" --speed "$OUTD/quant-kernels.jsonl" \
    "$OUTD/quant-torch.jsonl" $QFORMATS || step_failed quant-kernels $?
  if [ "${CAP%%.*}" -ge 9 ] 2>/dev/null; then
    # What FP8 tensor-core GEMMs (W8A8) would give the prefill: the measured note.
    timeout 120 python3 $HERE/bench_torch.py gemm8 qwen2.5-14b 10000 | tee -a "$OUTD/quant-torch.jsonl"
  fi
  for f in $FORMATS; do
    run_ref "q14-$f" 150 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 800 \
      --warmup 1 --repeats 1 --precision "$f"
  done
  for f in $FORMATS; do
    run_ref "q32-$f" 240 --model random:qwen2.5-32b --prompt-tokens 20000 --max-new 1000 \
      --warmup 1 --repeats 1 --precision "$f"
  done
  python3 $HERE/quant_bars.py "$OUTD" || step_failed quant-bars $?
fi

if want readme; then  # TestGPUsCommand on a real driver; the README's lines, GPU ones included
  phase "readme"
  if [ ! -x build/cmd-lmdrive.test ]; then
    echo "!! build/cmd-lmdrive.test missing: go test -c -o build/cmd-lmdrive.test ./cmd/lmdrive"
    step_failed readme 2
  else
    tests=TestGPUsCommand
    [ "$NGPU" -ge 2 ] && tests='TestGPUsCommand|TestREADMEAndHelpExamplesRun'
    (cd cmd/lmdrive && LMDRIVE_BIN="$BIN" LMDRIVE_LIB_PATH="$LIB" LMDRIVE_README_GPU=1 LMDRIVE_SKIP_PY=1 \
      ../../build/cmd-lmdrive.test -test.run "^($tests)\$" -test.v -test.timeout 30m) | tee "$OUTD/readme.txt"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || step_failed readme "$rc"
  fi
fi

if want digest; then  # the example digest (docs/digest-example.md, plots, HTML), about 4 minutes
  phase "digest"
  LMDRIVE_DIGEST_COPY_TO="$OUTD/digest-example" bash docs/plans/h200-digest.sh "$BIN" --lib-path "$LIB" 2>&1 | tail -60
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || step_failed digest "$rc"
fi

phase "summary"
python3 $HERE/summarize.py "$OUTD" | tee "$OUTD/summary.md"
if [ -n "$FAILED" ]; then
  echo "failed steps:$FAILED"
  exit 1
fi
echo "all steps ran"
