// Shared helpers of the CUDA plugin: error type, checked CUDA/cuBLAS/NCCL
// calls, and the 16-bit storage types with their conversions.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "lmdrive.h"
#include "lmdrive_boundary.hpp"

namespace lmdcu {

// The plugin throws the engine libraries' one error type (an LMD_ERR_* code
// and a message); plugin_abi.h's entry points turn it into a return code.
using Error = lmdrive::AbiError;

[[noreturn]] void cuda_fail(cudaError_t e, const char* what, const char* file, int line);
[[noreturn]] void cublas_fail(cublasStatus_t s, const char* what, const char* file, int line);

#define CU_CHECK(call)                                                  \
  do {                                                                  \
    cudaError_t e_ = (call);                                            \
    if (e_ != cudaSuccess) ::lmdcu::cuda_fail(e_, #call, __FILE__, __LINE__); \
  } while (0)

#define CU_CHECK_LAUNCH() CU_CHECK(cudaGetLastError())

#define BLAS_CHECK(call)                                                     \
  do {                                                                       \
    cublasStatus_t s_ = (call);                                              \
    if (s_ != CUBLAS_STATUS_SUCCESS) ::lmdcu::cublas_fail(s_, #call, __FILE__, __LINE__); \
  } while (0)

// Storage types: fp16 and bf16, with fp32 arithmetic everywhere.
template <typename T> struct Types;
template <> struct Types<__half> {
  using T2 = __half2;
  static constexpr cudaDataType_t cuda = CUDA_R_16F;
  static const char* name() { return "fp16"; }
};
template <> struct Types<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static constexpr cudaDataType_t cuda = CUDA_R_16BF;
  static const char* name() { return "bf16"; }
};

__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
// fp32: random weights that are quantized next are generated in fp32 first.
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
// Rounds through the storage type, as a framework does between two ops.
template <typename T> __device__ __forceinline__ float round_t(float x) { return to_f(from_f<T>(x)); }

// Two values packed in one 32-bit word (low half first).
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Programmatic dependent launch (sm_90 and newer). A kernel launched with
// Launch::early_start may begin while the kernel before it on the stream is
// still draining. Every kernel of this plugin therefore calls grid_wait()
// before it reads or writes anything an earlier kernel touches (what comes
// before that may only read weights), and grid_release() right after it, so
// that the next kernel can be scheduled onto SMs as this one's blocks retire.
// Both are no-ops for a kernel launched without the attribute and below sm_90.
__device__ __forceinline__ void grid_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Where a kernel goes: its stream, whether it may start early (above), and
// the GPU's multiprocessors (0: unknown) for kernels that size a persistent
// grid to the GPU.
struct Launch {
  cudaStream_t stream = nullptr;
  bool early_start = false;
  int sms = 0;
};

// kernel<<<grid, block, smem, l.stream>>>(args...), with the early-start
// attribute when l asks for it; checked.
template <typename... Params, typename... Args>
void launch(const Launch& l, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
            Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = l.stream;
  cudaLaunchAttribute attr[1] = {};
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = l.early_start ? 1 : 0;
  CU_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace lmdcu
