#!/usr/bin/env bash
# CI's compile check of the engine shims against real SDK headers. The
# headers are not part of the repository: CI checks the repository out beside
# a shared/ folder, and this script looks for them in
#   ../shared/third_party/tensorrt_llm-headers-3585984b   (TensorRT-LLM executor API)
#   ../shared/third_party/lmdeploy-v0.7.3                 (LMDeploy source tree at v0.7.3)
#   ../shared/third_party/yaml-cpp-0.8.0                  (yaml-cpp, include/ at least)
# relative to the repository root (LMDRIVE_SHARED_DIR overrides the folder).
# CUDA headers come from NVIDIA's PyPI wheels, installed with pip into a cache
# folder (LMDRIVE_CACHE_DIR, default build/cache) once per pinned set.
#
# Usage: sdk-headers-check.sh [trtllm|turbomind|all]   (default all)
#
# Where a set of headers is absent this prints one "skip:" line for it (one
# line in all when the shared folder itself is absent) and exits 0. Otherwise
# it runs compile-check.sh in object mode and fails with its status.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
shared="${LMDRIVE_SHARED_DIR:-$root/../shared}"
cache="${LMDRIVE_CACHE_DIR:-$root/build/cache}"
what="${1:-all}"

trt_dir="$shared/third_party/tensorrt_llm-headers-3585984b"
lmdeploy_dir="$shared/third_party/lmdeploy-v0.7.3"
yaml_dir="$shared/third_party/yaml-cpp-0.8.0"

# The CUDA headers each check needs, pinned (the TensorRT-LLM set is the one
# its header README names).
trt_wheels=(nvidia-cuda-runtime-cu12==12.9.79 nvidia-cuda-nvcc-cu12==12.9.86 nvidia-cuda-cccl-cu12==12.9.27)
tm_wheels=("${trt_wheels[@]}" nvidia-cublas-cu12==12.9.3.13 nvidia-curand-cu12==10.3.10.19
           nvidia-nccl-cu12==2.32.3 nvidia-nvtx-cu12==12.9.79)

case "$what" in
  trtllm | turbomind | all) ;;
  *) echo "usage: $0 trtllm|turbomind|all" >&2; exit 2 ;;
esac

if [[ ! -d "$shared" ]]; then
  echo "skip: SDK header compile checks: no shared folder at $shared (CI checks the repository out beside shared/)"
  exit 0
fi

# wheels_include DIR WHEEL...: installs the wheels into DIR unless DIR
# already holds exactly that set; prints the colon-separated include folders.
wheels_include() {
  local dir="$1"; shift
  local want="$*"
  if [[ ! -f "$dir/.wheels" || "$(cat "$dir/.wheels")" != "$want" ]]; then
    rm -rf "$dir"
    local t0=$SECONDS
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "$@" >&2 ||
      { echo "pip could not install the CUDA header wheels ($want)" >&2; return 1; }
    echo "$want" >"$dir/.wheels"
    echo "pip: installed ${#@} CUDA header wheels into $dir in $((SECONDS - t0)) s" >&2
  else
    echo "pip: CUDA header wheels already in $dir" >&2
  fi
  local incs=()
  for d in "$dir"/nvidia/*/include; do incs+=("$d"); done
  (IFS=:; echo "${incs[*]}")
}

# verify_manifest DIR: every file MANIFEST.txt lists has the sha256 it names.
verify_manifest() {
  local dir="$1" path hash
  while read -r path _ _ hash; do
    [[ "$hash" == sha256=* ]] || continue
    hash="${hash#sha256=}"
    if [[ "$(sha256sum "$dir/$path" | cut -c1-${#hash})" != "$hash" ]]; then
      echo "$dir/$path does not match its MANIFEST.txt sha256; the header set was changed" >&2
      return 1
    fi
  done <"$dir/MANIFEST.txt"
}

status=0

check_trtllm() {
  if [[ ! -f "$trt_dir/include/tensorrt_llm/executor/executor.h" ]]; then
    echo "skip: TensorRT-LLM compile check: no executor headers in $trt_dir"
    return 0
  fi
  verify_manifest "$trt_dir" || return 1
  echo "TensorRT-LLM headers: $trt_dir (commit 3585984b32cded5cc002d3087d3da4b0fd9fb8a5, MANIFEST.txt verified)"
  local cuda
  cuda="$(wheels_include "$cache/cuda-headers-trtllm" "${trt_wheels[@]}")" || return 1
  TRTLLM_INCLUDE="$trt_dir/include" TRTLLM_CXX11_ABI=1 CUDA_INCLUDES="$cuda" COMPILE_MODE=object SYMBOLS=count \
    bash "$here/compile-check.sh" trtllm
}

check_turbomind() {
  if [[ ! -f "$lmdeploy_dir/src/turbomind/triton_backend/llama/LlamaTritonModel.h" ||
        ! -f "$yaml_dir/include/yaml-cpp/yaml.h" ]]; then
    echo "skip: TurboMind compile check: no LMDeploy v0.7.3 tree in $lmdeploy_dir with yaml-cpp 0.8.0 in $yaml_dir"
    return 0
  fi
  local cuda
  cuda="$(wheels_include "$cache/cuda-headers-turbomind" "${tm_wheels[@]}")" || return 1
  LMDEPLOY_SRC="$lmdeploy_dir" YAML_CPP_INCLUDE="$yaml_dir/include" CUDA_INCLUDES="$cuda" COMPILE_MODE=object SYMBOLS=count \
    bash "$here/compile-check.sh" turbomind
}

t0=$SECONDS
if [[ "$what" == trtllm || "$what" == all ]]; then check_trtllm || status=$?; fi
if [[ "$what" == turbomind || "$what" == all ]]; then check_turbomind || status=$?; fi
echo "SDK header compile checks: $((SECONDS - t0)) s, status $status"
exit $status
