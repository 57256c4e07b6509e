// Device helpers shared by the element-wise and matrix-vector kernels:
// streamed 16-byte weight loads, 16-byte packing of eight 16-bit values,
// warp sums, and the rounding of RoPE and SwiGLU as Hugging Face's Qwen2
// computes them in 16 bits.
#pragma once

#include "common.h"
#include "linear.h"

namespace lmdcu {
namespace math {

constexpr unsigned kFull = 0xffffffffu;

// A streamed 16-byte weight load: read once, kept out of L1. The asm is
// volatile so that the loads of one unrolled step stay together, issued
// before the arithmetic that uses them.
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Eight 16-bit values of one 16-byte load, as floats.
template <typename T>
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const typename Types<T>::T2* p = reinterpret_cast<const typename Types<T>::T2*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = to_f(p[i].x);
    f[2 * i + 1] = to_f(p[i].y);
  }
}

template <typename T>
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 v;
  v.x = pack2<T>(f[0], f[1]);
  v.y = pack2<T>(f[2], f[3]);
  v.z = pack2<T>(f[4], f[5]);
  v.w = pack2<T>(f[6], f[7]);
  return v;
}

template <typename T>
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
  float fa[8], fb[8];
  unpack8<T>(a, fa);
  unpack8<T>(b, fb);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) s = fmaf(fa[i], fb[i], s);
  return s;
}

// Writes one rotated (or, for v, plain) pair (d, d + half) of "head" hh of
// token `row` at position pos (cache index base + pos), where heads [0, qh)
// are q, [qh, qh + kvh) are k and the rest are v. a and b are the projection plus bias in fp32.
// Rounding follows Hugging Face's Qwen2 in 16-bit: the projection is
// rounded, cos and sin are rounded, and so is each product and the sum of
// q·cos + rotate_half(q)·sin.
template <typename T>
__device__ __forceinline__ void store_pair(float a, float b, int hh, int d, int pos, int base,
                                           int row, const QkvTarget<T>& t) {
  const int hd = t.head_dim, half = hd / 2, qh = t.q_heads, kvh = t.kv_heads;
  a = round_t<T>(a);
  b = round_t<T>(b);
  if (hh < qh + kvh) {
    float sn, cs;
    sincosf(float(pos) * t.inv_freq[d], &sn, &cs);
    cs = round_t<T>(cs);
    sn = round_t<T>(sn);
    const float lo = round_t<T>(a * cs) + round_t<T>(-b * sn);
    const float hi = round_t<T>(b * cs) + round_t<T>(a * sn);
    T* dst;
    if (hh < qh) {
      dst = t.q_out + int64_t(row) * qh * hd + int64_t(hh) * hd;
    } else {
      dst = t.k_cache + (int64_t(hh - qh) * t.cap + base + pos) * hd;
    }
    dst[d] = from_f<T>(lo);
    dst[d + half] = from_f<T>(hi);
  } else {
    T* dst = t.v_cache + (int64_t(hh - qh - kvh) * t.cap + base + pos) * hd;
    dst[d] = from_f<T>(a);
    dst[d + half] = from_f<T>(b);
  }
}

// Threads of rmsnorm's one-row block: a 16-byte chunk each, up to 1024. The
// sum of squares is reduced in this block shape wherever a row is
// normalised, so that every kernel that normalises rounds alike.
__host__ __device__ inline int rmsnorm_threads(int hidden) {
  const int t = (hidden / 8 + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 1024 ? 1024 : t);
}

// T(silu(T(g))) · T(u), as Hugging Face's Qwen2 MLP in 16 bits (the caller
// rounds the product).
template <typename T>
__device__ __forceinline__ float swiglu(float g, float u) {
  const float gt = round_t<T>(g), ut = round_t<T>(u);
  const float s = round_t<T>(gt / (1.0f + expf(-gt)));
  return s * ut;
}

}  // namespace math
}  // namespace lmdcu
