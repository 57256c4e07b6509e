// Element-wise, normalisation and reduction kernels of the model step, and
// the kernels that fill weights on the device.
#include "kernels.h"

#include <algorithm>
#include <climits>

#include "kernel_math.cuh"

namespace lmdcu {

namespace {

using namespace math;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void random_fill_kernel(uint64_t key, float scale, int plus_one, uint64_t full_cols,
                                   uint64_t row0, uint64_t col0, uint64_t rows, uint64_t cols,
                                   T* dst, uint64_t ld) {
  grid_wait();
  grid_release();
  const uint64_t total = rows * cols;
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < total;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t r = i / cols, c = i % cols;
    const uint64_t index = (row0 + r) * full_cols + col0 + c;
    const uint64_t h = splitmix64(key + index);
    // The spec rounds after every operation: explicit round-to-nearest
    // intrinsics keep the compiler from fusing them.
    const float u = __fmul_rn(float(uint32_t(h >> 40)), 1.0f / 16777216.0f);
    float v = __fmul_rn(__fsub_rn(__fmul_rn(u, 2.0f), 1.0f), scale);
    if (plus_one) v = __fadd_rn(1.0f, v);
    dst[r * ld + c] = from_f<T>(v);
  }
}

template <typename T>
__global__ void convert_kernel(const float* src, uint64_t src_ld, uint64_t col0, uint64_t rows,
                               uint64_t cols, T* dst, uint64_t ld) {
  grid_wait();
  grid_release();
  const uint64_t total = rows * cols;
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < total;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t r = i / cols, c = i % cols;
    dst[r * ld + c] = from_f<T>(src[r * src_ld + col0 + c]);
  }
}

template <typename T>
__global__ void embed_kernel(const int32_t* tokens, const T* table, int hidden, T* x) {
  grid_wait();
  grid_release();
  const int i = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(table + int64_t(tokens[i]) * hidden);
  uint4* dst = reinterpret_cast<uint4*>(x + int64_t(i) * hidden);
  for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) dst[c] = src[c];
}

// The residual add and RMSNorm of one row by one block: when kDelta,
// x = T(x + T(d)) with add(c, d) filling the 8 fp32 deltas of chunk c; then
// out = weight * T(x * rsqrt(mean(x²) + eps)), as Hugging Face's
// Qwen2RMSNorm. Thread t owns chunks t, t + blockDim, …; with blockDim ≥
// hidden / 8 (the launchers' choice) that is one chunk, kept in registers
// between the passes, its weights requested before the reduction. Every
// kernel that normalises (with or without the all-reduce) sums in this order,
// so tensor-parallel and single-GPU runs round alike.
template <typename T, bool kDelta, typename Add>
__device__ __forceinline__ void residual_rmsnorm(T* x, Add add, const T* weight, T* out,
                                                 int hidden, float eps) {
  __shared__ float part[32];
  uint4* xr = reinterpret_cast<uint4*>(x);
  const uint4* wr = reinterpret_cast<const uint4*>(weight);
  uint4* orow = reinterpret_cast<uint4*>(out);
  const int chunks = hidden / 8, c0 = threadIdx.x;
  const uint4 w0 = c0 < chunks ? wr[c0] : make_uint4(0, 0, 0, 0);
  float v0[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  float ss = 0.f;
  for (int c = c0; c < chunks; c += blockDim.x) {
    float v[8];
    unpack8<T>(xr[c], v);
    if constexpr (kDelta) {
      float d[8];
      add(c, d);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = round_t<T>(v[j] + round_t<T>(d[j]));
      xr[c] = pack8<T>(v);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
    if (c == c0) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v0[j] = v[j];
    }
  }
  ss = warp_sum(ss);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) part[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    float t = lane < int(blockDim.x / 32) ? part[lane] : 0.f;
    t = warp_sum(t);
    if (lane == 0) part[0] = t;
  }
  __syncthreads();
  const float r = rsqrtf(part[0] / float(hidden) + eps);
  for (int c = c0; c < chunks; c += blockDim.x) {
    float v[8], w[8];
    if (c == c0) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = v0[j];
      unpack8<T>(w0, w);
    } else {
      unpack8<T>(xr[c], v);
      unpack8<T>(wr[c], w);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = w[j] * round_t<T>(v[j] * r);
    orow[c] = pack8<T>(v);
  }
}


// Eight deltas of chunk c of a row: fp32, or already in the storage type.
__device__ __forceinline__ void load8(const float* row, int c, float (&d)[8]) {
  const float4 a = reinterpret_cast<const float4*>(row)[2 * c];
  const float4 b = reinterpret_cast<const float4*>(row)[2 * c + 1];
  d[0] = a.x, d[1] = a.y, d[2] = a.z, d[3] = a.w, d[4] = b.x, d[5] = b.y, d[6] = b.z, d[7] = b.w;
}
template <typename T>
__device__ __forceinline__ void load8(const T* row, int c, float (&d)[8]) {
  unpack8<T>(reinterpret_cast<const uint4*>(row)[c], d);
}

// One block per row; hidden % 8 == 0. D: the delta's type (fp32 or T).
template <typename T, typename D>
__global__ void rmsnorm_kernel(T* x, const D* delta, const T* weight, T* out, int hidden,
                               float eps) {
  grid_wait();
  grid_release();
  const int64_t row = blockIdx.x;
  T* xr = x + row * hidden;
  T* orow = out + row * hidden;
  if (delta) {
    const D* dr = delta + row * hidden;
    auto add = [dr](int c, float (&d)[8]) { load8(dr, c, d); };
    residual_rmsnorm<T, true>(xr, add, weight, orow, hidden, eps);
  } else {
    residual_rmsnorm<T, false>(xr, [](int, float (&)[8]) {}, weight, orow, hidden, eps);
  }
}

// One thread per rotation pair of q|k|v for n tokens (fp32 projections).
template <typename T>
__global__ void rope_qkv_kernel(const float* qkv, int n, const QkvTarget<T> t) {
  grid_wait();
  grid_release();
  const int hd = t.head_dim, half = hd / 2;
  const int width = (t.q_heads + 2 * t.kv_heads) * hd;
  const int pairs = width / 2;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(n) * pairs) return;
  const int row = int(i / pairs), p = int(i % pairs);
  const int hh = p / half, d = p % half;
  const int r0 = hh * hd + d, r1 = r0 + half;
  const float* src = qkv + int64_t(row) * width;
  const float a = src[r0] + to_f(t.bias[r0]);
  const float b = src[r1] + to_f(t.bias[r1]);
  if (t.row_pos)
    store_pair<T>(a, b, hh, d, t.row_pos[row], t.row_base[row], row, t);
  else
    store_pair<T>(a, b, hh, d, t.state[0] + row, t.state[2], row, t);
}

template <typename T>
__global__ void silu_mul_kernel(const T* gu, int n, int inter, T* act) {
  grid_wait();
  grid_release();
  // Eight outputs a thread, 16-byte loads and stores (inter % 8 == 0).
  const int chunks = inter / 8;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(n) * chunks) return;
  const int64_t row = i / chunks, c = i % chunks;
  const uint4* g = reinterpret_cast<const uint4*>(gu + row * 2 * inter);
  float gf[8], uf[8];
  unpack8<T>(g[c], gf);
  unpack8<T>(g[chunks + c], uf);
#pragma unroll
  for (int j = 0; j < 8; ++j) gf[j] = swiglu<T>(gf[j], uf[j]);
  reinterpret_cast<uint4*>(act + row * inter)[c] = pack8<T>(gf);
}

__global__ void advance_kernel(int32_t* state, int next_pos, const PickScratch* pick) {
  grid_wait();
  grid_release();
  const int32_t id = pick->result.index;
  state[0] = next_pos;
  state[1] = id < 0 ? 0 : id;
}

__global__ void step_kernel(unsigned long long* counter) {
  grid_wait();
  grid_release();
  *counter += 1;
}

__device__ __forceinline__ void store_release_sys(unsigned long long* p, unsigned long long v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;\n" ::"l"(p), "l"(v) : "memory");
}
__device__ __forceinline__ unsigned long long load_acquire_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];\n" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// One block; hidden / 8 threads at most 1024 (each owns 8-element chunks).
template <typename T>
__global__ void allreduce_rmsnorm_kernel(PeerSet peers, int tp, int rank,
                                         const unsigned long long* counter, int slot, T* x,
                                         const T* weight, T* out, int hidden, float eps) {
  grid_wait();
  grid_release();
  if (threadIdx.x == 0) {
    const unsigned long long epoch = *counter * 1024ull + unsigned(slot) + 1ull;
    __threadfence_system();
    for (int p = 0; p < tp; ++p)
      if (p != rank) store_release_sys(peers.flag[p] + rank, epoch);
    const long long t0 = clock64();
    for (int p = 0; p < tp; ++p) {
      if (p == rank) continue;
      while (load_acquire_sys(peers.flag[rank] + p) < epoch) {
        // A peer that never arrives is a bug: fail the launch instead of hanging.
        if (clock64() - t0 > (1ll << 35)) __trap();
      }
    }
  }
  __syncthreads();
  auto add = [&](int c, float (&d)[8]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) d[j] = 0.f;
    for (int p = 0; p < tp; ++p) {
      const float4* src = reinterpret_cast<const float4*>(peers.part[p]) + 2 * c;
      const float4 a = __ldcv(src), b = __ldcv(src + 1);
      d[0] += a.x; d[1] += a.y; d[2] += a.z; d[3] += a.w;
      d[4] += b.x; d[5] += b.y; d[6] += b.z; d[7] += b.w;
    }
  };
  residual_rmsnorm<T, true>(x, add, weight, out, hidden, eps);
}

// A running greedy choice: the first index of the largest value seen and
// sum(exp(v - max)) over the values seen.
struct Running {
  float max = -INFINITY, sum = 0.f;
  int index = INT_MAX;

  __device__ __forceinline__ void add(float v, int i) {
    if (!(v > -INFINITY)) return;  // -inf and NaN carry no mass
    if (v > max) {
      sum = sum * expf(max - v) + 1.f;
      max = v;
      index = i;
    } else {
      sum += expf(v - max);
    }
  }
  __device__ __forceinline__ void merge(float m, float s, int i) {
    if (!(m > -INFINITY)) return;
    if (!(max > -INFINITY)) {
      max = m, sum = s, index = i;
      return;
    }
    const float top = fmaxf(max, m);
    sum = sum * expf(max - top) + s * expf(m - top);
    if (m > max || (m == max && i < index)) index = i;
    max = top;
  }
  __device__ __forceinline__ void merge_warp() {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      merge(__shfl_xor_sync(kFull, max, o), __shfl_xor_sync(kFull, sum, o),
            __shfl_xor_sync(kFull, index, o));
  }
};

// Rounds y (as launch_round) and, with pick set, reduces it to the greedy
// choice: each block writes a partial, the last block to finish merges them
// in block order and resets the counter for the next launch (graph replay).
template <typename T>
__global__ void round_kernel(float* y, int64_t n, PickScratch* pick) {
  grid_wait();
  grid_release();
  // Row blockIdx.y of n values, with its own scratch.
  y += int64_t(blockIdx.y) * n;
  if (pick) pick += blockIdx.y;
  Running run;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float v = round_t<T>(y[i]);
    y[i] = v;
    run.add(v, int(i));
  }
  if (!pick) return;
  __shared__ float s_max[32], s_sum[32];
  __shared__ int s_index[32];
  __shared__ bool s_last;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  run.merge_warp();
  if (lane == 0) s_max[warp] = run.max, s_sum[warp] = run.sum, s_index[warp] = run.index;
  __syncthreads();
  if (threadIdx.x == 0) {
    Running b;
    for (int w = 0; w < warps; ++w) b.merge(s_max[w], s_sum[w], s_index[w]);
    pick->part[blockIdx.x] = Pick{b.max, b.index, b.sum, 0u};
    __threadfence();
    s_last = atomicAdd(&pick->done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!s_last || threadIdx.x != 0) return;
  __threadfence();
  Running all;
  for (unsigned b = 0; b < gridDim.x; ++b) {
    const Pick* p = pick->part + b;  // written by other blocks: read past L1
    all.merge(__ldcg(&p->max), __ldcg(&p->sum), __ldcg(&p->index));
  }
  pick->result = Pick{all.max, all.index == INT_MAX ? -1 : all.index, all.sum, 0u};
  pick->done = 0;
}

// dst[i] = src[rows[i]] for k rows of `width` elements (16-byte chunks).
template <typename T>
__global__ void gather_rows_kernel(const T* src, const int32_t* rows, int width, T* dst) {
  grid_wait();
  grid_release();
  const int i = blockIdx.x;
  const uint4* s = reinterpret_cast<const uint4*>(src + int64_t(rows[i]) * width);
  uint4* d = reinterpret_cast<uint4*>(dst + int64_t(i) * width);
  for (int c = threadIdx.x; c < width / 8; c += blockDim.x) d[c] = s[c];
}

unsigned grid_for(uint64_t total, unsigned block) {
  uint64_t g = (total + block - 1) / block;
  if (g > (1u << 20)) g = 1u << 20;
  return unsigned(g ? g : 1);
}

}  // namespace

template <typename T>
void launch_random_fill(uint64_t key, float scale, bool plus_one, uint64_t full_cols,
                        uint64_t row0, uint64_t col0, uint64_t rows, uint64_t cols, T* dst,
                        uint64_t ld, const Launch& l) {
  if (rows * cols == 0) return;
  launch(l, random_fill_kernel<T>, grid_for(rows * cols, 256), 256, 0, key, scale,
         plus_one ? 1 : 0, full_cols, row0, col0, rows, cols, dst, ld);
}

template <typename T>
void launch_convert(const float* src, uint64_t src_ld, uint64_t col0, uint64_t rows,
                    uint64_t cols, T* dst, uint64_t ld, const Launch& l) {
  if (rows * cols == 0) return;
  launch(l, convert_kernel<T>, grid_for(rows * cols, 256), 256, 0, src, src_ld, col0, rows, cols,
         dst, ld);
}

template <typename T>
void launch_embed(const int32_t* tokens, int n, const T* table, int hidden, T* x, const Launch& l) {
  launch(l, embed_kernel<T>, n, 128, 0, tokens, table, hidden, x);
}

template <typename T, typename D>
void launch_rmsnorm(T* x, const D* delta, const T* weight, T* out, int rows, int hidden,
                    float eps, const Launch& l) {
  launch(l, rmsnorm_kernel<T, D>, rows, rmsnorm_threads(hidden), 0, x, delta, weight, out, hidden,
         eps);
}

template <typename T>
void launch_rope_qkv(const float* qkv, int n, const QkvTarget<T>& t, const Launch& l) {
  const uint64_t total = uint64_t(n) * (t.q_heads + 2 * t.kv_heads) * t.head_dim / 2;
  launch(l, rope_qkv_kernel<T>, unsigned((total + 255) / 256), 256, 0, qkv, n, t);
}

void launch_advance(int32_t* state, int next_pos, const PickScratch* pick, const Launch& l) {
  launch(l, advance_kernel, 1, 1, 0, state, next_pos, pick);
}

void launch_step(unsigned long long* counter, const Launch& l) {
  launch(l, step_kernel, 1, 1, 0, counter);
}

template <typename T>
void launch_allreduce_rmsnorm(const PeerSet& peers, int tp, int rank,
                              const unsigned long long* counter, int slot, T* x,
                              const T* weight, T* out, int hidden, float eps, const Launch& l) {
  launch(l, allreduce_rmsnorm_kernel<T>, 1, rmsnorm_threads(hidden), 0, peers, tp, rank, counter, slot, x, weight,
         out, hidden, eps);
}

template <typename T>
void launch_round(float* y, int64_t n, PickScratch* pick, const Launch& l) {
  launch_round_rows<T>(y, 1, n, pick, l);
}

template <typename T>
void launch_round_rows(float* y, int rows, int64_t n, PickScratch* picks, const Launch& l) {
  const unsigned grid = picks ? unsigned(std::min<int64_t>(kPickBlocks, (n + 255) / 256))
                              : unsigned((n + 255) / 256);
  launch(l, round_kernel<T>, dim3(grid, unsigned(rows)), 256, 0, y, n, picks);
}

template <typename T>
void launch_gather_rows(const T* src, const int32_t* rows, int k, int width, T* dst, const Launch& l) {
  if (k == 0) return;
  launch(l, gather_rows_kernel<T>, unsigned(k), 128, 0, src, rows, width, dst);
}

template <typename T>
void launch_silu_mul(const T* gu, int n, int inter, T* act, const Launch& l) {
  const uint64_t total = uint64_t(n) * (inter / 8);
  launch(l, silu_mul_kernel<T>, unsigned((total + 255) / 256), 256, 0, gu, n, inter, act);
}

#define LMDCU_INSTANTIATE(T)                                                                     \
  template void launch_random_fill<T>(uint64_t, float, bool, uint64_t, uint64_t, uint64_t,      \
                                      uint64_t, uint64_t, T*, uint64_t, const Launch&);          \
  template void launch_convert<T>(const float*, uint64_t, uint64_t, uint64_t, uint64_t, T*,     \
                                  uint64_t, const Launch&);                                      \
  template void launch_embed<T>(const int32_t*, int, const T*, int, T*, const Launch&);         \
  template void launch_rmsnorm<T, float>(T*, const float*, const T*, T*, int, int, float,       \
                                         const Launch&);                                         \
  template void launch_rmsnorm<T, T>(T*, const T*, const T*, T*, int, int, float, const Launch&); \
  template void launch_rope_qkv<T>(const float*, int, const QkvTarget<T>&, const Launch&);     \
  template void launch_silu_mul<T>(const T*, int, int, T*, const Launch&);                      \
  template void launch_round<T>(float*, int64_t, PickScratch*, const Launch&);                  \
  template void launch_round_rows<T>(float*, int, int64_t, PickScratch*, const Launch&);        \
  template void launch_gather_rows<T>(const T*, const int32_t*, int, int, T*, const Launch&);   \
  template void launch_allreduce_rmsnorm<T>(const PeerSet&, int, int, const unsigned long long*, \
                                            int, T*, const T*, T*, int, float, const Launch&);

LMDCU_INSTANTIATE(__half)
LMDCU_INSTANTIATE(__nv_bfloat16)
template void launch_random_fill<float>(uint64_t, float, bool, uint64_t, uint64_t, uint64_t,
                                        uint64_t, uint64_t, float*, uint64_t, const Launch&);

}  // namespace lmdcu
