// Weight-only quantized Linear layers on the GPU (W8A16): int8 with one fp32
// scale per output row (TensorRT-LLM's int8 weight-only scheme), or fp8 E4M3
// with one scale per row (sm_90). The rules are quantize.h's, bit for bit:
// scale = max|w| / qmax (fp32 division), q = round-to-nearest-even(w / scale).
// Activations stay fp16/bf16, sums fp32; the scale is applied once per output.
#pragma once

#include "common.h"

namespace lmdcu {

enum class QFormat { Int8, Fp8 };

// One quantized [rows × cols] matrix, row-major bytes, one scale per row.
struct QMatrix {
  uint8_t* q = nullptr;
  float* scale = nullptr;
  bool present() const { return q != nullptr; }
};

// Quantizes rows [0, rows) of the fp32 block src (row stride src_cols: whole
// rows of the tensor, so each scale comes from the full row) and writes the
// bytes of columns [col0, col0 + cols) to q (row stride cols) and the scales.
// *bad (device) is set to 1 when a row holds a NaN or infinite weight.
void launch_quantize(QFormat f, const float* src, uint64_t rows, uint64_t src_cols, uint64_t col0,
                     uint64_t cols, uint8_t* q, float* scale, int* bad, const Launch& l);

// w[r][c] = T(q[r][c] * scale[r]): a layer's weights for a cuBLAS prefill.
// cols % 16 == 0.
template <typename T>
void launch_dequantize(QFormat f, const QMatrix& m, int rows, int cols, T* w, const Launch& l);

// Matrix-vector products for one token (decode), y = scale ⊙ (Q x), fp32 sums.
// k % 16 == 0; 16-byte weight loads, two rows a warp.
template <typename T>
void launch_qgemv(QFormat f, const QMatrix& w, const T* x, float* y, int rows, int k,
                  const Launch& l);

// The q|k|v projection fused with bias, RoPE and the cache write (as
// launch_gemv_qkv_rope), on quantized weights.
template <typename T>
void launch_qgemv_qkv_rope(QFormat f, const QMatrix& w, const T* bias, const T* x, int k,
                           const int32_t* state, const float* inv_freq, int q_heads, int kv_heads,
                           int head_dim, T* q_out, T* k_cache, T* v_cache, int cap,
                           const Launch& l);

// The gate|up projection fused with SwiGLU (as launch_gemv_gate_up).
template <typename T>
void launch_qgemv_gate_up(QFormat f, const QMatrix& w, const T* x, int inter, int k, T* act,
                          const Launch& l);

}  // namespace lmdcu
