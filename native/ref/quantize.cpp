#include "quantize.h"

#include <cmath>
#include <cstring>

#include "kit.h"

namespace lmdref {

WeightFormat parse_weight_format(const std::string& s) {
  if (s.empty()) return WeightFormat::Native;
  if (s == "int8") return WeightFormat::Int8;
  if (s == "fp8") return WeightFormat::Fp8;
  invalid("config key \"weights\": \"" + s +
          "\" is not a weight format; valid: \"int8\" (per-channel W8A16) or \"fp8\" (E4M3, "
          "CUDA on sm_90); leave it out for weights in the activation dtype");
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::Int8: return "int8";
    case WeightFormat::Fp8: return "fp8";
    default: return "";
  }
}

float row_scale(const float* w, uint64_t n, float qmax, const std::string& what) {
  float amax = 0.0f;
  for (uint64_t i = 0; i < n; ++i) {
    const float a = std::fabs(w[i]);
    if (!std::isfinite(a))
      invalid("tensor \"" + what + "\" holds a NaN or infinite weight (element " +
              std::to_string(i) + " of a row); it cannot be quantized");
    if (a > amax) amax = a;
  }
  return amax / qmax;
}

void quantize_row_int8(const float* w, uint64_t n, float scale, int8_t* q) {
  if (scale == 0.0f) {
    std::memset(q, 0, n);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(w[i] / scale);  // default rounding mode: nearest, ties to even
    v = v > kInt8Max ? kInt8Max : (v < -kInt8Max ? -kInt8Max : v);
    q[i] = static_cast<int8_t>(v);
  }
}

uint8_t fp8_e4m3_from_float(float x) {
  if (std::isnan(x)) return 0x7f;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (a >= kFp8E4M3Max) return sign | 0x7e;  // saturate: 448 is the largest finite value
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): a in [2^(e-1), 2^e)
  --e;                // now a in [2^e, 2^(e+1))
  if (a == 0.0f || e < -6) {
    // Subnormals: m * 2^-9, m in [0, 8]; m = 8 is the smallest normal, whose
    // code is also 8.
    return sign | static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9)));
  }
  // Normal: (1 + m/8) * 2^e with 3 mantissa bits; a carry into the exponent
  // falls out of the addition.
  const int m = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - e)));  // in [8, 16]
  return sign | static_cast<uint8_t>((e + 7) * 8 + m - 8);
}

float fp8_e4m3_to_float(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int e = (b >> 3) & 0xf, m = b & 7;
  if (e == 0xf && m == 7) return std::nanf("");
  if (e == 0) return sign * std::ldexp(float(m), -9);
  return sign * std::ldexp(float(8 + m), e - 10);
}

void quantize_row_fp8(const float* w, uint64_t n, float scale, uint8_t* q) {
  if (scale == 0.0f) {
    std::memset(q, 0, n);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) q[i] = fp8_e4m3_from_float(w[i] / scale);
}

void quantize_int8(const float* w, uint64_t rows, uint64_t cols, int8_t* q, float* scales,
                   const std::string& what) {
  for (uint64_t r = 0; r < rows; ++r) {
    scales[r] = row_scale(w + r * cols, cols, kInt8Max, what);
    quantize_row_int8(w + r * cols, cols, scales[r], q + r * cols);
  }
}

void quantize_fp8(const float* w, uint64_t rows, uint64_t cols, uint8_t* q, float* scales,
                  const std::string& what) {
  for (uint64_t r = 0; r < rows; ++r) {
    scales[r] = row_scale(w + r * cols, cols, kFp8E4M3Max, what);
    quantize_row_fp8(w + r * cols, cols, scales[r], q + r * cols);
  }
}

bool is_linear_weight(const std::string& name) {
  static const char* const kSuffixes[] = {
      ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
      ".self_attn.o_proj.weight", ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",
      ".mlp.down_proj.weight"};
  for (const char* s : kSuffixes) {
    const size_t n = std::strlen(s);
    if (name.size() > n && name.compare(name.size() - n, n, s) == 0) return true;
  }
  return false;
}

}  // namespace lmdref
