// Weight-only quantized projections on the GPU (W8A16): int8 with one fp32
// scale per output row (TensorRT-LLM's int8 weight-only scheme), or fp8 E4M3
// with one scale per row (sm_90). The rules are native/ref/quantize.h's, bit
// for bit: scale = max|w| / qmax (fp32 division), q = nearest-even(w / scale).
// Activations stay fp16/bf16, sums fp32; the scale is applied once per output.
// Model code reaches these through linear.h; weights.cu quantizes at load.
#pragma once

#include "common.h"

namespace lmdcu {

enum class QFormat { Int8, Fp8 };

template <typename T> struct QkvTarget;

// Quantizes rows [0, rows) of the fp32 block src (row stride src_cols: whole
// rows of the tensor, so each scale comes from the full row) and writes the
// bytes of columns [col0, col0 + cols) to q (row stride cols) and the scales.
// *bad (device) is set to 1 when a row holds a NaN or infinite weight.
void launch_quantize(QFormat f, const float* src, uint64_t rows, uint64_t src_cols, uint64_t col0,
                     uint64_t cols, uint8_t* q, float* scale, int* bad, const Launch& l);

// w[r][c] = T(q[r][c] * scale[r]), cols % 16 == 0.
template <typename T>
void launch_dequantize(QFormat f, const uint8_t* q, const float* scale, int rows, int cols, T* w,
                       const Launch& l);

// One token (decode): y = scale ⊙ (Q x) in fp32, k % 16 == 0; 16-byte weight
// loads, two rows a warp, as the 16-bit kernels of linear_gemv.cu.
template <typename T>
void launch_qgemv(QFormat f, const uint8_t* q, const float* scale, const T* x, float* y, int rows,
                  int k, const Launch& l);

// q|k|v fused with bias, RoPE and the cache write (linear_gemv_qkv_rope).
template <typename T>
void launch_qgemv_qkv_rope(QFormat f, const uint8_t* q, const float* scale, const T* x, int k,
                           const QkvTarget<T>& t, const Launch& l);

// gate|up fused with SwiGLU (linear_gemv_gate_up): act[j] for j < inter.
template <typename T>
void launch_qgemv_gate_up(QFormat f, const uint8_t* q, const float* scale, const T* x, int inter,
                          int k, T* act, const Launch& l);

}  // namespace lmdcu
