// Weight-only quantization of a Linear layer's [out, in] weight matrix, one
// scale per output channel (row), symmetric, as TensorRT-LLM's int8
// weight-only mode (W8A16) stores it. The rules below are exact: the CPU
// backend, the CUDA kernels and the Python reference (native/ref/quant_ref.py)
// produce the same bytes and the same scales from the same fp32 row.
//
// int8 (per row w[0..n)):
//   amax  = max |w[i]|                               (exact)
//   scale = amax / 127                               (one fp32 division, round to nearest even)
//   q[i]  = clamp(rint(w[i] / scale), -127, 127)     (fp32 division; rint: nearest, ties to even)
//   an all-zero row has scale 0 and q = 0
//   dequantized value = q[i] * scale; the engine applies the scale once per
//   output: y[o] = scale[o] * sum_i q[o][i] x[i]
//
// fp8 E4M3 (OCP/NVIDIA "e4m3fn": bias 7, no infinities, largest finite 448):
//   scale = amax / 448                               (fp32 division)
//   q[i]  = e4m3(w[i] / scale), round to nearest even, saturating at ±448
//
// A NaN or infinite weight is refused: it names the tensor.
#pragma once

#include <cstdint>
#include <string>

namespace lmdref {

// How Linear weights are stored. Activations keep the backend's dtype.
enum class WeightFormat { Native, Int8, Fp8 };

// "int8" → Int8, "fp8" → Fp8, "" → Native; anything else throws
// Error(LMD_ERR_INVALID) that lists the valid values.
WeightFormat parse_weight_format(const std::string& s);
const char* weight_format_name(WeightFormat f);  // "", "int8", "fp8"

constexpr float kInt8Max = 127.0f;
constexpr float kFp8E4M3Max = 448.0f;

// amax / qmax of one row. Throws Error(LMD_ERR_INVALID) naming `what` (the
// tensor) on a NaN or infinite weight.
float row_scale(const float* w, uint64_t n, float qmax, const std::string& what);

// q[i] as above for a row whose scale is known.
void quantize_row_int8(const float* w, uint64_t n, float scale, int8_t* q);
void quantize_row_fp8(const float* w, uint64_t n, float scale, uint8_t* q);

// rows × cols row-major fp32 → int8 (or fp8 bytes) and one scale per row.
void quantize_int8(const float* w, uint64_t rows, uint64_t cols, int8_t* q, float* scales,
                   const std::string& what);
void quantize_fp8(const float* w, uint64_t rows, uint64_t cols, uint8_t* q, float* scales,
                  const std::string& what);

// E4M3 conversions: round to nearest even, saturating to ±448; NaN → 0x7f.
uint8_t fp8_e4m3_from_float(float x);
float fp8_e4m3_to_float(uint8_t b);

// True for q/k/v/o and gate/up/down weights: the layers a WeightFormat applies to.
bool is_linear_weight(const std::string& tensor_name);

}  // namespace lmdref
