// Device-side epilogues shared by the 16-bit kernels (kernels.cu) and the
// quantized-weight kernels (quant.cu): what follows a projection's dot
// products, with Hugging Face's 16-bit rounding points.
#pragma once

#include "common.h"

namespace lmdcu {

// Writes one rotated (or, for v, plain) pair (d, d + half) of "head" hh, where
// heads [0, qh) are q, [qh, qh + kvh) are k and the rest are v. a and b are
// the projection plus bias in fp32. Rounding follows Hugging Face's Qwen2 in
// 16-bit: the projection is rounded, cos and sin are rounded, and so is each
// product and the sum of q·cos + rotate_half(q)·sin.
template <typename T>
__device__ __forceinline__ void store_pair(float a, float b, int hh, int d, int pos, int row,
                                           const float* inv_freq, int qh, int kvh, int hd,
                                           T* q_out, T* k_cache, T* v_cache, int cap) {
  const int half = hd / 2;
  a = round_t<T>(a);
  b = round_t<T>(b);
  if (hh < qh + kvh) {
    float sn, cs;
    sincosf(float(pos) * inv_freq[d], &sn, &cs);
    cs = round_t<T>(cs);
    sn = round_t<T>(sn);
    const float lo = round_t<T>(a * cs) + round_t<T>(-b * sn);
    const float hi = round_t<T>(b * cs) + round_t<T>(a * sn);
    T* dst;
    if (hh < qh) {
      dst = q_out + int64_t(row) * qh * hd + int64_t(hh) * hd;
    } else {
      dst = k_cache + (int64_t(hh - qh) * cap + pos) * hd;
    }
    dst[d] = from_f<T>(lo);
    dst[d + half] = from_f<T>(hi);
  } else {
    T* dst = v_cache + (int64_t(hh - qh - kvh) * cap + pos) * hd;
    dst[d] = from_f<T>(a);
    dst[d + half] = from_f<T>(b);
  }
}

template <typename T>
__device__ __forceinline__ float swiglu(float g, float u) {
  const float gt = round_t<T>(g), ut = round_t<T>(u);
  const float s = round_t<T>(gt / (1.0f + expf(-gt)));
  return s * ut;
}

}  // namespace lmdcu
