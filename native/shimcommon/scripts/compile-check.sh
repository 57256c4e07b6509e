#!/usr/bin/env bash
# Compile check of the engine shims against the real public headers of the
# SDK releases they target, without building or linking the SDKs (no GPU, no
# CUDA toolkit install needed: header-only packages are enough).
#
# Usage:
#   compile-check.sh trtllm    # TensorRT-LLM shim (native/trtllm)
#   compile-check.sh turbomind # TurboMind shim (native/turbomind)
#   compile-check.sh all
#
# Header locations come from the environment (nothing machine-specific is
# stored in the repository):
#   TRTLLM_INCLUDE     directory holding tensorrt_llm/executor/executor.h
#                      (a TensorRT-LLM checkout's cpp/include, or the wheel's
#                      <site-packages>/tensorrt_llm/include)
#   TRTLLM_CXX11_ABI   _GLIBCXX_USE_CXX11_ABI value of that release (default 1)
#   LMDEPLOY_SRC       an LMDeploy source tree at tag v0.7.3 (its root)
#   YAML_CPP_INCLUDE   yaml-cpp include directory (LMDeploy 0.7.3 pins 0.8.0)
#   CUDA_INCLUDES      colon-separated CUDA include directories: cuda_runtime,
#                      cuda_fp16, cublas, curand, nccl, nvtx headers (a CUDA
#                      toolkit's include/, or the include/ folders of NVIDIA's
#                      nvidia-*-cu12 Python wheels)
#   CXX                compiler (default g++); CXXFLAGS_EXTRA extra flags
#   COMPILE_MODE       syntax (default: -fsyntax-only) or object (-c into a
#                      temporary directory, then lists the SDK symbols the
#                      object needs from the SDK's libraries)
#   SYMBOLS            object mode: list (default) prints those symbols,
#                      count prints how many there are
#
# Each shim translation unit is compiled, and the shimcommon sources with
# the same ABI flag. Exit status: 0 when every unit
# compiles, 1 otherwise, 2 on a usage or setup error.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
native="$(cd "$here/../.." && pwd)"
CXX="${CXX:-g++}"
what="${1:-all}"

cuda_flags=()
if [[ -n "${CUDA_INCLUDES:-}" ]]; then
  IFS=':' read -r -a dirs <<<"$CUDA_INCLUDES"
  for d in "${dirs[@]}"; do [[ -n "$d" ]] && cuda_flags+=("-isystem" "$d"); done
fi
mode="${COMPILE_MODE:-syntax}"
objdir=""
if [[ "$mode" == object ]]; then
  objdir="$(mktemp -d)"
  trap 'rm -rf "$objdir"' EXIT
elif [[ "$mode" != syntax ]]; then
  echo "COMPILE_MODE must be syntax or object" >&2
  exit 2
fi
common=(-std=c++17 -Wall -Wno-unused-function -I"$native/include" -I"$native/shimcommon/include")
status=0

# run LABEL SOURCE FLAGS...: compiles SOURCE with FLAGS in the chosen mode.
run() {
  local label="$1" src="$2"; shift 2
  local out=(-fsyntax-only)
  if [[ -n "$objdir" ]]; then out=(-c -o "$objdir/$(basename "$src").o"); fi
  echo "== $label"
  echo "   $CXX ${out[*]} $* $src"
  if "$CXX" "${out[@]}" "$@" "$src"; then
    echo "   OK"
    if [[ -n "$objdir" && "$label" != shimcommon* ]]; then
      local syms
      syms="$(nm -C --undefined-only "$objdir/$(basename "$src").o" \
        | grep -E 'tensorrt_llm|turbomind|initTrtLlmPlugins|YAML' | sed 's/^ *U /     /' | sort -u)"
      if [[ "${SYMBOLS:-list}" == count ]]; then
        local v1
        v1="$(grep -c 'tensorrt_llm::_v1::' <<<"$syms")"
        echo "   $(grep -c . <<<"$syms") undefined SDK symbols, resolved at link time by the SDK's libraries" \
             "$( ((v1 > 0)) && echo "($v1 of them in tensorrt_llm::_v1::)")"
      else
        echo "   undefined SDK symbols (resolved at link time by the SDK's libraries):"
        echo "$syms"
      fi
    fi
  else
    echo "   FAILED"
    status=1
  fi
}

check_common() {
  local abi="$1"
  for src in "$native"/shimcommon/src/*.cc; do
    run "shimcommon $(basename "$src") (_GLIBCXX_USE_CXX11_ABI=$abi)" "$src" \
      "${common[@]}" -D_GLIBCXX_USE_CXX11_ABI="$abi"
  done
}

check_trtllm() {
  if [[ -z "${TRTLLM_INCLUDE:-}" || ! -f "$TRTLLM_INCLUDE/tensorrt_llm/executor/executor.h" ]]; then
    echo "TRTLLM_INCLUDE must point at a directory holding tensorrt_llm/executor/executor.h" >&2
    return 2
  fi
  local abi="${TRTLLM_CXX11_ABI:-1}"
  check_common "$abi"
  run "trtllm shim_trtllm.cc (_GLIBCXX_USE_CXX11_ABI=$abi)" "$native/trtllm/shim_trtllm.cc" \
    "${common[@]}" -D_GLIBCXX_USE_CXX11_ABI="$abi" -isystem "$TRTLLM_INCLUDE" "${cuda_flags[@]}" \
    ${CXXFLAGS_EXTRA:-}
}

check_turbomind() {
  if [[ -z "${LMDEPLOY_SRC:-}" || ! -f "$LMDEPLOY_SRC/src/turbomind/triton_backend/llama/LlamaTritonModel.h" ]]; then
    echo "LMDEPLOY_SRC must point at an LMDeploy v0.7.3 source tree" >&2
    return 2
  fi
  if [[ -z "${YAML_CPP_INCLUDE:-}" || ! -f "$YAML_CPP_INCLUDE/yaml-cpp/yaml.h" ]]; then
    echo "YAML_CPP_INCLUDE must point at yaml-cpp's include directory" >&2
    return 2
  fi
  local version
  version="$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$LMDEPLOY_SRC/lmdeploy/version.py")"
  echo "LMDeploy source version: ${version:-unknown}"
  # The definitions LMDeploy's CMakeLists adds for a CUDA >= 11 multi-GPU build.
  local defs=(-DENABLE_BF16 -DBUILD_MULTI_GPU=1 -DUSE_NCCL=1 -DUSE_NVTX -D_GLIBCXX_USE_CXX11_ABI=1
              -DLMDRIVE_TURBOMIND_VERSION="\"$version\"")
  check_common 1
  run "turbomind shim_turbomind.cc" "$native/turbomind/shim_turbomind.cc" \
    "${common[@]}" "${defs[@]}" -I"$LMDEPLOY_SRC" -isystem "$YAML_CPP_INCLUDE" "${cuda_flags[@]}" \
    ${CXXFLAGS_EXTRA:-}
}

case "$what" in
  trtllm) check_trtllm || status=$? ;;
  turbomind) check_turbomind || status=$? ;;
  all)
    check_trtllm || status=$?
    check_turbomind || status=$?
    ;;
  *) echo "usage: $0 trtllm|turbomind|all" >&2; exit 2 ;;
esac
echo "compiler: $($CXX --version | head -1)"
exit $status
