#!/usr/bin/env bash
# The GPU check of the ref engine's CUDA backend, end to end, in one device run:
# builds liblmdrive_ref.so and liblmdrive_ref_cuda.so, runs the parity checks
# against Hugging Face transformers and the tensor-parallel identity checks,
# measures copy bandwidth, the prefill GEMMs alone, transformers and the ref
# engine (TP=1 and TP=2), prints a table last and keeps the full log.
#
# usage (from the repository root, on a machine with nvcc, PyTorch and
# transformers):
#   bash native/ref/cuda/gpu_check.sh path/to/lmdrive [out-dir]
# Environment: LMDREF_CHECK_STEPS  which steps to run (default: all of
#                                  build parity torch run14 ab14 pre14 profile hf14 tp14 abtp14 run32;
#                                  run72: 72B at TP=2, run where each GPU has 100 GB or more;
#                                  doctor: lmdrive doctor on this host, for docs/doctor.md;
#                                  omp, not in the default list: the CPU backend with OpenMP
#                                  and with std::thread, for docs/dist.md;
#                                  quant: int8/fp8 weights, see below, not in the default list;
#                                  cpuparity: the CPU engine (fp32 and int8) against transformers
#                                  on the CPU, native/ref/tests/hf_parity.py;
#                                  digest: the example digest, docs/plans/h200-digest.sh, only when named)
#              LMDREF_CHECK_ARCHS  CUDA architectures (default "80;90a")
#              LMDREF_CHECK_GEMM_TOKENS  prompt lengths of the GEMM baseline (default "10000 20000")
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
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
HERE=native/ref/cuda
BUILD=build/gpu
LIB=$PWD/$BUILD/lib
# LMDREF_CUDA_* names the engine's switches only (it refuses other names):
# the architectures are LMDREF_CHECK_ARCHS (LMDREF_CUDA_ARCHS still read).
ARCHS=${LMDREF_CHECK_ARCHS:-${LMDREF_CUDA_ARCHS:-80;90a}}
unset LMDREF_CUDA_ARCHS
STEPS=${LMDREF_CHECK_STEPS:-build doctor parity torch run14 ab14 pre14 profile hf14 tp14 abtp14 run32 run72}
# The GPUs are shared: never NVLink multicast (NCCL NVLS) from this script.
export NCCL_NVLS_ENABLE=0
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
GPU_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | sort -n | head -1)
export LMDREF_CHECK_GPUS=$NGPU
FAILED=""

want() { [[ " $STEPS " == *" $1 "* ]]; }
phase() { echo "== $(date -u +%H:%M:%S) $*"; }
step_failed() { FAILED="$FAILED $1"; echo "!! step $1 failed (rc=$2)"; }

phase "environment"
date -u +"%Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
nvcc --version | tail -1
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
python3 -c 'import nvidia.nccl as n; print("nccl wheel", list(n.__path__)[0])' 2>/dev/null || true
echo "NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-unset}"
"$BIN" gpus --json >"$OUTD/gpus.json" 2>/dev/null || true

if want build; then
  phase "build"
  mkdir -p $BUILD
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DLMDRIVE_LIB_DIR="$LIB" \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" >"$BUILD/cmake.log" 2>&1 &&
    grep -E "lmdrive" "$BUILD/cmake.log" &&
    cmake --build $BUILD -j"$(nproc)" --target lmdrive_ref lmdrive_ref_cuda >>"$BUILD/cmake.log" 2>&1
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
    "${out[@]}" "$@" 2>&1 | grep -v "^  engine| $" | tail -25
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || step_failed "$name" "$rc"
}

if want parity; then
  phase "parity"
  timeout 480 python3 $HERE/parity.py "$LIB" "$BIN" "$PWD/$BUILD/parity" "$OUTD/parity.json" ||
    step_failed parity $?
fi

if want torch; then
  phase "torch: copy bandwidth, prefill GEMMs"
  {
    timeout 60 python3 $HERE/bench_torch.py copybw
    for n in ${LMDREF_CHECK_GEMM_TOKENS:-10000 20000}; do
      timeout 60 python3 $HERE/bench_torch.py gemm qwen2.5-14b "$n"
    done
  } | tee -a "$OUTD/torch.jsonl"
fi

if want run14; then
  run_ref 14b 150 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 800 \
    --warmup 1 --repeats 2
fi

if want ab14; then  # A/B, each against the default code of the run14 step:
  # no early kernel start, the greedy choice on the host, no decode graph
  for ab in LMDREF_CUDA_PDL=0 LMDREF_CUDA_CHOICE=host LMDREF_CUDA_GRAPH=0; do
    export "${ab?}"
    run_ref "ab:14b ${ab#LMDREF_CUDA_}" 100 --model random:qwen2.5-14b --prompt-tokens 10000 \
      --max-new 200 --warmup 1 --repeats 2
    unset "${ab%%=*}"
  done
fi

if want pre14; then  # prefill at 20k: with run14's 10k, separates the quadratic attention
  run_ref 14b-20k 100 --model random:qwen2.5-14b --prompt-tokens 20000 --max-new 16 \
    --warmup 1 --repeats 2
fi

if want profile; then  # where a decode step's time goes, kernel by kernel (Nsight Compute)
  phase "profile: one 14B decode step under ncu"
  NCU_DIR=$(ls -d /opt/nvidia/nsight-compute/*/ 2>/dev/null | tail -1)
  if command -v ncu >/dev/null || [ -n "$NCU_DIR" ]; then
    PATH=$PATH:${NCU_DIR:-/nonexistent} timeout 240 python3 $HERE/profile_decode.py "$LIB" \
      "$OUTD/ncu-decode-14b.csv" qwen2.5-14b 10000 || step_failed profile $?
  else
    echo "ncu not found: profile skipped"
  fi
fi

if want hf14; then
  phase "transformers 14B"
  timeout 150 python3 $HERE/bench_torch.py hf qwen2.5-14b 10000 64 | tee -a "$OUTD/torch.jsonl" ||
    step_failed hf14 $?
fi

if want tp14 && [ "$NGPU" -ge 2 ]; then
  run_ref 14b-tp2 120 --tp 2 --model random:qwen2.5-14b --prompt-tokens 10000 --max-new 800 \
    --warmup 1 --repeats 2
fi

if want abtp14 && [ "$NGPU" -ge 2 ]; then  # A/B: no early kernel start at TP=2
  LMDREF_CUDA_PDL=0 run_ref "ab:14b-tp2 PDL=0" 100 --tp 2 --model random:qwen2.5-14b \
    --prompt-tokens 10000 --max-new 200 --warmup 1 --repeats 2
fi

if want run32 && [ "$NGPU" -ge 2 ]; then
  run_ref 32b-tp2 180 --tp 2 --model random:qwen2.5-32b --prompt-tokens 20000 --max-new 1000 \
    --warmup 1 --repeats 1
fi

if want run72 && [ "$NGPU" -ge 2 ] && [ "${GPU_MIB:-0}" -ge 100000 ]; then
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

if want digest; then  # the example digest (docs/digest-example.md, plots, HTML), about 4 minutes
  phase "digest"
  LMDRIVE_DIGEST_COPY_TO="$OUTD/digest-example" bash docs/plans/h200-digest.sh "$BIN" --lib-path "$LIB" 2>&1 | tail -60
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || step_failed digest "$rc"
fi

phase "summary"
python3 $HERE/summarize.py "$OUTD"
if [ -n "$FAILED" ]; then
  echo "failed steps:$FAILED"
  exit 1
fi
