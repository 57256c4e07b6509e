// exp over 16 floats at once (Cephes-style polynomial, about 1 ulp in
// [-87, 88]): softmax over long contexts is bound by exp, and libm's scalar
// expf cannot be vectorised without -ffast-math.
#pragma once

#include <cstdint>

#include "cpu/simd.h"

namespace lmdref {

typedef int32_t i32x16 __attribute__((vector_size(64)));

// Arguments below -87 give about 1.6e-38 instead of a denormal or 0: enough
// for softmax weights, where the argument is a score minus the row maximum.
LMDREF_INLINE f32x16 exp16(f32x16 x) {
  const f32x16 lo = f32x16{} - 87.0f, hi = f32x16{} + 88.0f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (round-to-nearest mode).
  const float magic = 12582912.0f;
  f32x16 n = x * 1.44269504088896341f + magic;
  n = n - magic;
  // r = x - n ln 2, with ln 2 split so that n * 0.693359375 is exact.
  f32x16 r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  f32x16 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // times 2^n, built in the exponent field.
  const i32x16 e = (__builtin_convertvector(n, i32x16) + 127) << 23;
  f32x16 scale;
  __builtin_memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

}  // namespace lmdref
