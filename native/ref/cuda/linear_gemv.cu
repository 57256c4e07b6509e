// Projections of one token: matrix-vector kernels that stream the weights
// once and fuse what follows the product (bias, RoPE and the cache write
// after q|k|v; SwiGLU after gate|up).
#include "kernel_math.cuh"
#include "linear.h"

namespace lmdcu {

namespace {

using namespace math;

// A streamed 16-byte weight load. The asm is volatile so that the loads of one
// unrolled step stay together, issued before the arithmetic that uses them.
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// Two dot products of one token's x with rows r0 and r1 of a row-major
// [*, k] matrix, reduced over the warp (every lane gets the sums). Each lane
// streams 16-byte chunks, four chunks of each row in flight. The kernel's
// grid_wait() happens in here: the first weight loads are issued before it,
// so they overlap the end of the kernel that produces x.
template <typename T>
__device__ __forceinline__ void warp_dot2(const T* __restrict__ w0, const T* __restrict__ w1,
                                          const T* __restrict__ x, int k, float& s0, float& s1) {
  const int lane = threadIdx.x % 32;
  const uint4* a = reinterpret_cast<const uint4*>(w0);
  const uint4* b = reinterpret_cast<const uint4*>(w1);
  const uint4* v = reinterpret_cast<const uint4*>(x);
  const int chunks = k / 8;
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
    uint4 rx[4];
    if (c != lane) {
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        ra[u] = ld_stream(a + c + 32 * u);
        rb[u] = ld_stream(b + c + 32 * u);
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) rx[u] = __ldg(v + c + 32 * u);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      acc0 += dot8<T>(ra[u], rx[u]);
      acc1 += dot8<T>(rb[u], rx[u]);
    }
  }
  for (; c < chunks; c += 32) {
    const uint4 rx = __ldg(v + c);
    acc0 += dot8<T>(ld_stream(a + c), rx);
    acc1 += dot8<T>(ld_stream(b + c), rx);
  }
  s0 = warp_sum(acc0);
  s1 = warp_sum(acc1);
}

constexpr int kGemvWarps = 4;

template <typename T>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(const T* __restrict__ w, const T* __restrict__ x, float* __restrict__ y, int rows,
                int k) {
  const int warp = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  const int r0 = 2 * warp;
  if (r0 >= rows) return;
  const int r1 = min(r0 + 1, rows - 1);
  float s0, s1;
  warp_dot2<T>(w + int64_t(r0) * k, w + int64_t(r1) * k, x, k, s0, s1);
  if (threadIdx.x % 32 == 0) {
    y[r0] = s0;
    if (r1 != r0) y[r1] = s1;
  }
}

// A warp per rotation pair (d, d + hd/2) of one head of q|k|v.
template <typename T>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_qkv_rope_kernel(const T* __restrict__ w, const T* __restrict__ x, int k,
                         const QkvTarget<T> t) {
  const int half = t.head_dim / 2;
  const int pairs = (t.q_heads + 2 * t.kv_heads) * half;
  const int p = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (p >= pairs) return;
  const int hh = p / half, d = p % half;
  const int r0 = hh * t.head_dim + d, r1 = r0 + half;
  float a, b;
  warp_dot2<T>(w + int64_t(r0) * k, w + int64_t(r1) * k, x, k, a, b);
  if (threadIdx.x % 32 == 0)
    store_pair<T>(a + to_f(t.bias[r0]), b + to_f(t.bias[r1]), hh, d, t.state[0], 0, t);
}

// A warp per output j: rows j (gate) and inter + j (up).
template <typename T>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_gate_up_kernel(const T* __restrict__ w, const T* __restrict__ x, int inter, int k,
                        T* act) {
  const int j = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (j >= inter) return;
  float g, u;
  warp_dot2<T>(w + int64_t(j) * k, w + int64_t(inter + j) * k, x, k, g, u);
  if (threadIdx.x % 32 == 0) act[j] = from_f<T>(swiglu<T>(g, u));
}

unsigned blocks_for(int warps) { return unsigned((warps + kGemvWarps - 1) / kGemvWarps); }

}  // namespace

template <typename T>
void linear_gemv(const Linear<T>& W, const T* x, float* y, const Launch& l) {
  if (W.quantized()) return launch_qgemv<T>(W.format, W.q, W.scale, x, y, W.rows, W.cols, l);
  launch(l, gemv_kernel<T>, blocks_for((W.rows + 1) / 2), kGemvWarps * 32, 0, W.w, x, y, W.rows,
         W.cols);
}

template <typename T>
void linear_gemv_qkv_rope(const Linear<T>& W, const T* x, const QkvTarget<T>& t, const Launch& l) {
  if (W.quantized()) return launch_qgemv_qkv_rope<T>(W.format, W.q, W.scale, x, W.cols, t, l);
  const int pairs = (t.q_heads + 2 * t.kv_heads) * t.head_dim / 2;
  launch(l, gemv_qkv_rope_kernel<T>, blocks_for(pairs), kGemvWarps * 32, 0, W.w, x, W.cols, t);
}

template <typename T>
void linear_gemv_gate_up(const Linear<T>& W, const T* x, T* act, const Launch& l) {
  const int inter = W.rows / 2;
  if (W.quantized())
    return launch_qgemv_gate_up<T>(W.format, W.q, W.scale, x, inter, W.cols, act, l);
  launch(l, gemv_gate_up_kernel<T>, blocks_for(inter), kGemvWarps * 32, 0, W.w, x, inter, W.cols,
         act);
}

#define LMDCU_INSTANTIATE(T)                                                                    \
  template void linear_gemv<T>(const Linear<T>&, const T*, float*, const Launch&);              \
  template void linear_gemv_qkv_rope<T>(const Linear<T>&, const T*, const QkvTarget<T>&,        \
                                        const Launch&);                                         \
  template void linear_gemv_gate_up<T>(const Linear<T>&, const T*, T*, const Launch&);

LMDCU_INSTANTIATE(__half)
LMDCU_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
