// The model's projections: one weight type and every way the model step
// applies one. A new weight format adds its fields to Linear and its branch
// to the functions below (linear_gemm.cu, linear_gemv.cu; the int8 and fp8
// kernels are in quant.cu); model_step.cu calls nothing else for a matrix
// product.
#pragma once

#include <cublas_v2.h>

#include "common.h"
#include "quant.h"

namespace lmdcu {

// A weight matrix of one GPU, [rows][cols] row-major in T: y = W x has rows
// outputs for cols inputs. Quantized (quant.h): w is null, q holds the
// rows × cols bytes (int8 or fp8 E4M3) and scale one fp32 per row; deq is a
// rows × cols scratch in T that linear_prepare fills for the prefill's GEMM
// (null for an lm_head, which the prefill applies row by row instead).
template <typename T>
struct Linear {
  const T* w = nullptr;
  int rows = 0, cols = 0;
  const uint8_t* q = nullptr;
  const float* scale = nullptr;
  QFormat format = QFormat::Int8;
  T* deq = nullptr;
  bool quantized() const { return q != nullptr; }
};

// Where the q|k|v projection of a token goes after its bias and RoPE: q to
// q_out ([tokens][q_heads*hd]), k and v into one layer's cache
// ([kv_heads][cap][hd]). Token i is at position state[0] + i of its
// sequence, whose positions start at cache index state[2]; or, when row_pos
// is set (a batched step over several sequences), at position row_pos[i]
// starting at cache index row_base[i].
template <typename T>
struct QkvTarget {
  const T* bias = nullptr;          // q|k|v bias, rows of the Linear
  const int32_t* state = nullptr;   // device memory: [0] first position, [2] cache base
  const int32_t* row_pos = nullptr;   // device memory, one per token, or null
  const int32_t* row_base = nullptr;  // device memory, one per token (with row_pos)
  const float* inv_freq = nullptr;  // hd / 2 RoPE inverse frequencies
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  T* q_out = nullptr;
  T* k_cache = nullptr;
  T* v_cache = nullptr;
  int cap = 0;
};

// ---- n tokens (prefill): cuBLAS, fp32 accumulation.
// A quantized W is dequantized into W.deq first (T(q × scale), the values of
// the dequantized checkpoint): linear_prepare, on the stream of the GEMMs
// that follow, before the first linear_gemm of W in a forward (W.deq may be
// shared with other matrices that are prepared later). No-op for T weights.
template <typename T>
void linear_prepare(const Linear<T>& W, const Launch& l);

// y[n][W.rows] = x[n][W.cols] · Wᵀ, y in fp32 (CUDA_R_32F) or T.
template <typename T>
void linear_gemm(cublasHandle_t blas, const Linear<T>& W, const T* x, int n, void* y,
                 cudaDataType_t y_type);

// ---- one token (decode): matrix-vector kernels that stream the weights
// once with 16-byte loads and fuse what follows the product. Two forms
// (Options::stream_gemv):
//   warp:   a warp per pair of rows, one row pair per warp, x read from
//           global memory; the input must be ready (the caller normalises).
//   stream: a persistent grid of warps, each streaming row pair after row
//           pair with the next loads issued before the current ones are
//           used; x staged once per block in shared memory, optionally
//           normalised on the way in (RMSNorm fused, GemvInput::norm), and
//           the residual add fused into o and down (linear_gemv_residual).
// Both accumulate every output in the same order, so they give the same bits.

// The input vector of a one-token projection: x as it is, or (norm set) the
// residual stream, which the kernel normalises as rmsnorm does:
// norm ⊙ T(x · rsqrt(mean(x²) + eps)), bit for bit. The stream form only.
template <typename T>
struct GemvInput {
  const T* x = nullptr;
  const T* norm = nullptr;
  float eps = 0.f;
};

// The warp form.
// y = W x in fp32.
template <typename T>
void linear_gemv(const Linear<T>& W, const T* x, float* y, const Launch& l);

// q|k|v = W x + bias, rotated and stored as QkvTarget says.
template <typename T>
void linear_gemv_qkv_rope(const Linear<T>& W, const T* x, const QkvTarget<T>& out,
                          const Launch& l);

// gate|up = W x (W.rows = 2 × inter), act[j] = T(T(silu(gate[j])) · up[j]).
template <typename T>
void linear_gemv_gate_up(const Linear<T>& W, const T* x, T* act, const Launch& l);

// The stream form (same outputs as the warp form for the same input).
template <typename T>
void stream_gemv(const Linear<T>& W, const GemvInput<T>& in, float* y, const Launch& l);
// residual[r] = T(residual[r] + T((W x)[r])): the projection and the
// residual add of a one-GPU decode step (o and down).
template <typename T>
void stream_gemv_residual(const Linear<T>& W, const GemvInput<T>& in, T* residual,
                          const Launch& l);
template <typename T>
void stream_gemv_qkv_rope(const Linear<T>& W, const GemvInput<T>& in, const QkvTarget<T>& out,
                          const Launch& l);
template <typename T>
void stream_gemv_gate_up(const Linear<T>& W, const GemvInput<T>& in, T* act, const Launch& l);

}  // namespace lmdcu
