// Row-wise operations of the Qwen2 block, written to round like torch's fp32 ops.
#pragma once

#include <cstdint>

namespace lmdref {

// out = weight * (x * rsqrt(mean(x²) + eps)); the mean is summed in double.
void rms_norm(const float* x, const float* weight, float* out, int64_t dim, float eps);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// x[i] += y[i].
void add_in_place(float* x, const float* y, int64_t n);

}  // namespace lmdref
