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

template <typename T> struct Linear;
template <typename T> struct QkvTarget;
template <typename T> struct GemvInput;

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

// ---- One token (decode): y = scale ⊙ (Q x), fp32 sums, W.cols % 16 == 0.
// A block of four warps owns a tile of 16 rows and splits the columns among
// its warps; each warp streams 256 bytes of each of its 16 rows a step with
// 16-byte loads (the next step in flight while it multiplies), widens the
// bytes to 16-bit pairs with a byte permute (int8) or a conversion (fp8),
// and multiplies on the tensor cores (mma.m16n8k16, fp32 accumulation) with
// x staged once per block in shared memory. The input is GemvInput (linear.h):
// x, or with norm set the RMSNorm of x, computed as launch_rmsnorm does.
// Every form sums each output in the same order, so they agree bit for bit.

// y[r] in fp32.
template <typename T>
void quant_gemv(const Linear<T>& W, const GemvInput<T>& in, float* y, const Launch& l);

// residual[r] = T(residual[r] + T(y[r])): o and down on one GPU.
template <typename T>
void quant_gemv_residual(const Linear<T>& W, const GemvInput<T>& in, T* residual,
                         const Launch& l);

// q|k|v with bias, RoPE and the cache write (as linear_gemv_qkv_rope).
template <typename T>
void quant_gemv_qkv_rope(const Linear<T>& W, const GemvInput<T>& in, const QkvTarget<T>& t,
                         const Launch& l);

// gate|up with SwiGLU (as linear_gemv_gate_up): act[j] for j < W.rows / 2.
template <typename T>
void quant_gemv_gate_up(const Linear<T>& W, const GemvInput<T>& in, T* act, const Launch& l);

}  // namespace lmdcu
