#include "quant.h"

#include <cuda_fp8.h>

#include "kernel_math.cuh"
#include "linear.h"

namespace lmdcu {
namespace {

using namespace math;

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

template <QFormat F> struct Q;
template <> struct Q<QFormat::Int8> {
  static constexpr float kMax = 127.0f;
  __device__ static uint8_t encode(float v) {  // v = w / scale, |v| ≤ 127 up to rounding
    const float r = fminf(fmaxf(rintf(v), -127.0f), 127.0f);  // rintf: nearest, ties to even
    return uint8_t(int8_t(r));
  }
  // Four weights of one 32-bit word as floats: a byte b becomes the float
  // 2^23 + (b ^ 0x80) by a byte permute, minus 2^23 + 128: exact, and no
  // integer-to-float conversions (a quarter-rate instruction).
  __device__ static void decode4(uint32_t w, float* f) {
    const uint32_t u = w ^ 0x80808080u;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      f[i] = __int_as_float(int(__byte_perm(u, 0x4B000000u, 0x7540u + i))) - 8388736.0f;
  }
};
template <> struct Q<QFormat::Fp8> {
  static constexpr float kMax = 448.0f;
  __device__ static uint8_t encode(float v) {
    return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));  // nearest even
  }
  __device__ static void decode4(uint32_t w, float* f) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const __half2_raw h =
          __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w >> (16 * i)), __NV_E4M3);
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&h));
      f[2 * i] = v.x;
      f[2 * i + 1] = v.y;
    }
  }
};

// One block per row: the scale from the whole row, then the bytes of the
// rank's columns.
template <QFormat F>
__global__ void quantize_kernel(const float* src, uint64_t src_cols, uint64_t col0, uint64_t cols,
                                uint8_t* q, float* scale, int* bad) {
  __shared__ float part[32];
  __shared__ int nonfinite;
  const float* row = src + blockIdx.x * src_cols;
  if (threadIdx.x == 0) nonfinite = 0;
  __syncthreads();
  float amax = 0.f;
  int odd = 0;
  for (uint64_t c = threadIdx.x; c < src_cols; c += blockDim.x) {
    const float a = fabsf(row[c]);
    odd |= !isfinite(a);
    amax = fmaxf(amax, a);
  }
  if (odd) nonfinite = 1;
  amax = warp_max(amax);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) part[warp] = amax;
  __syncthreads();
  if (warp == 0) {
    float t = lane < int(blockDim.x / 32) ? part[lane] : 0.f;
    t = warp_max(t);
    if (lane == 0) part[0] = t;
  }
  __syncthreads();
  const float s = __fdiv_rn(part[0], Q<F>::kMax);
  if (threadIdx.x == 0) {
    scale[blockIdx.x] = s;
    if (nonfinite) *bad = 1;
  }
  uint8_t* out = q + blockIdx.x * cols;
  for (uint64_t c = threadIdx.x; c < cols; c += blockDim.x)
    out[c] = s == 0.f ? uint8_t(0) : Q<F>::encode(__fdiv_rn(row[col0 + c], s));
}

template <typename T, QFormat F>
__global__ void dequantize_kernel(const uint8_t* q, const float* scale, int rows, int cols, T* w) {
  grid_wait();
  grid_release();
  const int chunks = cols / 16;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(rows) * chunks) return;
  const int64_t r = i / chunks;
  const float s = scale[r];
  const uint4 v = reinterpret_cast<const uint4*>(q)[i];
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
  float f[16];
#pragma unroll
  for (int j = 0; j < 4; ++j) Q<F>::decode4(words[j], f + 4 * j);
  uint4 out[2];
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
#pragma unroll
  for (int j = 0; j < 8; ++j) o[j] = pack2<T>(f[2 * j] * s, f[2 * j + 1] * s);
  uint4* dst = reinterpret_cast<uint4*>(w) + 2 * i;
  dst[0] = out[0];
  dst[1] = out[1];
}

// A streamed 16-byte weight load (as linear_gemv.cu's).
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// 16 quantized weights (one 16-byte load) times 16 activations (two).
template <typename T, QFormat F>
__device__ __forceinline__ float dot16(const uint4& w, const uint4& x0, const uint4& x1) {
  float xf[16], wf[16];
  unpack8<T>(x0, *reinterpret_cast<float(*)[8]>(xf));
  unpack8<T>(x1, *reinterpret_cast<float(*)[8]>(xf + 8));
  Q<F>::decode4(w.x, wf);
  Q<F>::decode4(w.y, wf + 4);
  Q<F>::decode4(w.z, wf + 8);
  Q<F>::decode4(w.w, wf + 12);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 16; ++i) s = fmaf(wf[i], xf[i], s);
  return s;
}

// Two dot products of x with quantized rows r0 and r1 (unscaled), reduced
// over the warp; four 16-byte chunks of each row in flight per lane. As in
// kernels.cu, the first weights are requested before grid_wait().
template <typename T, QFormat F>
__device__ __forceinline__ void warp_qdot2(const uint8_t* __restrict__ w0,
                                           const uint8_t* __restrict__ w1,
                                           const T* __restrict__ x, int k, float& s0, float& s1) {
  const int lane = threadIdx.x % 32;
  const uint4* a = reinterpret_cast<const uint4*>(w0);
  const uint4* b = reinterpret_cast<const uint4*>(w1);
  const uint4* v = reinterpret_cast<const uint4*>(x);
  const int chunks = k / 16;
  float acc0 = 0.f, acc1 = 0.f;
  int c = lane;
  uint4 ra[4], rb[4];
  if (c + 96 < chunks) {
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      ra[u] = ld_stream(a + c + 32 * u);
      rb[u] = ld_stream(b + c + 32 * u);
    }
  }
  grid_wait();
  grid_release();
  for (; c + 96 < chunks; c += 128) {
    if (c != lane) {
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        ra[u] = ld_stream(a + c + 32 * u);
        rb[u] = ld_stream(b + c + 32 * u);
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int cc = c + 32 * u;
      const uint4 x0 = __ldg(v + 2 * cc), x1 = __ldg(v + 2 * cc + 1);
      acc0 += dot16<T, F>(ra[u], x0, x1);
      acc1 += dot16<T, F>(rb[u], x0, x1);
    }
  }
  for (; c < chunks; c += 32) {
    const uint4 x0 = __ldg(v + 2 * c), x1 = __ldg(v + 2 * c + 1);
    acc0 += dot16<T, F>(ld_stream(a + c), x0, x1);
    acc1 += dot16<T, F>(ld_stream(b + c), x0, x1);
  }
  s0 = warp_sum(acc0);
  s1 = warp_sum(acc1);
}

constexpr int kWarps = 4;

template <typename T, QFormat F>
__global__ void __launch_bounds__(kWarps * 32)
    qgemv_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scale,
                 const T* __restrict__ x, float* __restrict__ y, int rows, int k) {
  const int warp = blockIdx.x * kWarps + threadIdx.x / 32;
  const int r0 = 2 * warp;
  if (r0 >= rows) return;
  const int r1 = min(r0 + 1, rows - 1);
  float s0, s1;
  warp_qdot2<T, F>(q + int64_t(r0) * k, q + int64_t(r1) * k, x, k, s0, s1);
  if (threadIdx.x % 32 == 0) {
    y[r0] = s0 * scale[r0];
    if (r1 != r0) y[r1] = s1 * scale[r1];
  }
}

template <typename T, QFormat F>
__global__ void __launch_bounds__(kWarps * 32)
    qgemv_qkv_rope_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scale,
                          const T* __restrict__ x, int k, const QkvTarget<T> t) {
  const int half = t.head_dim / 2;
  const int pairs = (t.q_heads + 2 * t.kv_heads) * half;
  const int p = blockIdx.x * kWarps + threadIdx.x / 32;
  if (p >= pairs) return;
  const int hh = p / half, d = p % half;
  const int r0 = hh * t.head_dim + d, r1 = r0 + half;
  float a, b;
  warp_qdot2<T, F>(q + int64_t(r0) * k, q + int64_t(r1) * k, x, k, a, b);
  if (threadIdx.x % 32 == 0)
    store_pair<T>(a * scale[r0] + to_f(t.bias[r0]), b * scale[r1] + to_f(t.bias[r1]), hh, d,
                  t.state[0], 0, t);
}

template <typename T, QFormat F>
__global__ void __launch_bounds__(kWarps * 32)
    qgemv_gate_up_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scale,
                         const T* __restrict__ x, int inter, int k, T* act) {
  const int j = blockIdx.x * kWarps + threadIdx.x / 32;
  if (j >= inter) return;
  float g, u;
  warp_qdot2<T, F>(q + int64_t(j) * k, q + int64_t(inter + j) * k, x, k, g, u);
  if (threadIdx.x % 32 == 0)
    act[j] = from_f<T>(swiglu<T>(g * scale[j], u * scale[inter + j]));
}

int blocks(int64_t n, int per) { return int((n + per - 1) / per); }

}  // namespace

void launch_quantize(QFormat f, const float* src, uint64_t rows, uint64_t src_cols, uint64_t col0,
                     uint64_t cols, uint8_t* q, float* scale, int* bad, const Launch& l) {
  if (rows == 0) return;
  if (f == QFormat::Int8)
    launch(l, quantize_kernel<QFormat::Int8>, dim3(unsigned(rows)), 256, 0, src, src_cols, col0,
           cols, q, scale, bad);
  else
    launch(l, quantize_kernel<QFormat::Fp8>, dim3(unsigned(rows)), 256, 0, src, src_cols, col0,
           cols, q, scale, bad);
}

template <typename T>
void launch_dequantize(QFormat f, const uint8_t* q, const float* scale, int rows, int cols, T* w,
                       const Launch& l) {
  const int n = blocks(int64_t(rows) * (cols / 16), 256);
  if (f == QFormat::Int8)
    launch(l, dequantize_kernel<T, QFormat::Int8>, n, 256, 0, q, scale, rows, cols, w);
  else
    launch(l, dequantize_kernel<T, QFormat::Fp8>, n, 256, 0, q, scale, rows, cols, w);
}

template <typename T>
void launch_qgemv(QFormat f, const uint8_t* q, const float* scale, const T* x, float* y, int rows,
                  int k, const Launch& l) {
  const int n = blocks((rows + 1) / 2, kWarps);
  if (f == QFormat::Int8)
    launch(l, qgemv_kernel<T, QFormat::Int8>, n, kWarps * 32, 0, q, scale, x, y, rows, k);
  else
    launch(l, qgemv_kernel<T, QFormat::Fp8>, n, kWarps * 32, 0, q, scale, x, y, rows, k);
}

template <typename T>
void launch_qgemv_qkv_rope(QFormat f, const uint8_t* q, const float* scale, const T* x, int k,
                           const QkvTarget<T>& t, const Launch& l) {
  const int n = blocks((t.q_heads + 2 * t.kv_heads) * (t.head_dim / 2), kWarps);
  if (f == QFormat::Int8)
    launch(l, qgemv_qkv_rope_kernel<T, QFormat::Int8>, n, kWarps * 32, 0, q, scale, x, k, t);
  else
    launch(l, qgemv_qkv_rope_kernel<T, QFormat::Fp8>, n, kWarps * 32, 0, q, scale, x, k, t);
}

template <typename T>
void launch_qgemv_gate_up(QFormat f, const uint8_t* q, const float* scale, const T* x, int inter,
                          int k, T* act, const Launch& l) {
  const int n = blocks(inter, kWarps);
  if (f == QFormat::Int8)
    launch(l, qgemv_gate_up_kernel<T, QFormat::Int8>, n, kWarps * 32, 0, q, scale, x, inter, k,
           act);
  else
    launch(l, qgemv_gate_up_kernel<T, QFormat::Fp8>, n, kWarps * 32, 0, q, scale, x, inter, k,
           act);
}

#define LMDCU_QUANT_INSTANTIATE(T)                                                              \
  template void launch_dequantize<T>(QFormat, const uint8_t*, const float*, int, int, T*,       \
                                     const Launch&);                                            \
  template void launch_qgemv<T>(QFormat, const uint8_t*, const float*, const T*, float*, int,   \
                                int, const Launch&);                                            \
  template void launch_qgemv_qkv_rope<T>(QFormat, const uint8_t*, const float*, const T*, int,  \
                                         const QkvTarget<T>&, const Launch&);                   \
  template void launch_qgemv_gate_up<T>(QFormat, const uint8_t*, const float*, const T*, int,   \
                                        int, T*, const Launch&);
LMDCU_QUANT_INSTANTIATE(__half)
LMDCU_QUANT_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
