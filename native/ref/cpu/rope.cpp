#include "cpu/rope.h"

#include <cmath>

namespace lmdref {

Rope::Rope(int head_dim, double theta) {
  const int half = head_dim / 2;
  inv_freq_.resize(half);
  const float base = static_cast<float>(theta);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float p = static_cast<float>(std::pow(static_cast<double>(base), double(exponent)));
    inv_freq_[i] = 1.0f / p;
  }
}

void Rope::angles(int64_t pos, float* cos_out, float* sin_out) const {
  const float p = static_cast<float>(pos);
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const float a = p * inv_freq_[i];
    cos_out[i] = static_cast<float>(std::cos(static_cast<double>(a)));
    sin_out[i] = static_cast<float>(std::sin(static_cast<double>(a)));
  }
}

void Rope::rotate(float* x, int n_heads, const float* cos_v, const float* sin_v) const {
  const int half = this->half();
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + int64_t(h) * 2 * half;
    for (int i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      // x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1].
      const float lo = a * cos_v[i], hi = b * cos_v[i];
      const float slo = -b * sin_v[i], shi = a * sin_v[i];
      v[i] = lo + slo;
      v[i + half] = hi + shi;
    }
  }
}

}  // namespace lmdref
