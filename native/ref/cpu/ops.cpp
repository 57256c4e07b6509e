#include "cpu/ops.h"

#include <cmath>

namespace lmdref {

void rms_norm(const float* x, const float* weight, float* out, int64_t dim, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < dim; ++i) sum += double(x[i]) * double(x[i]);
  const float mean = static_cast<float>(sum / double(dim));
  const float r = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * r);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_in_place(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace lmdref
