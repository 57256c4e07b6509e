// The model's projections: one weight type and every way the model step
// applies one. A new weight format (e.g. INT8 with per-row scales) adds its
// fields to Linear and its branch to the functions below (linear_gemm.cu,
// linear_gemv.cu); model_step.cu calls nothing else for a matrix product.
#pragma once

#include <cublas_v2.h>

#include "common.h"

namespace lmdcu {

// A weight matrix of one GPU, [rows][cols] row-major in T: y = W x has rows
// outputs for cols inputs.
template <typename T>
struct Linear {
  const T* w = nullptr;
  int rows = 0, cols = 0;
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
// y[n][W.rows] = x[n][W.cols] · Wᵀ, y in fp32 (CUDA_R_32F) or T.
template <typename T>
void linear_gemm(cublasHandle_t blas, const Linear<T>& W, const T* x, int n, void* y,
                 cudaDataType_t y_type);

// ---- one token (decode): matrix-vector kernels that stream the weights
// once with 16-byte loads and fuse what follows the product.
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

}  // namespace lmdcu
