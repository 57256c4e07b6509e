// Projections of one token: matrix-vector kernels that stream the weights
// once and fuse what follows the product (bias, RoPE and the cache write
// after q|k|v; SwiGLU after gate|up).
#include <algorithm>

#include "kernel_math.cuh"
#include "linear.h"

namespace lmdcu {

namespace {

using namespace math;

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
    store_pair<T>(a + to_f(t.bias[r0]), b + to_f(t.bias[r1]), hh, d, t.state[0], t.state[2], 0, t);
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


// ---------------------------------------------------------------------------
// The stream form: a persistent grid (as many blocks as fit on the GPU at
// once, or fewer when there is less work) whose warps take row pairs
// p = warp, warp + warps, …; each warp keeps the loads of its next step (the
// next 128 chunks of its pair, or the first of its next pair) in flight while
// it multiplies the current ones, so the weights stream without a gap at row
// boundaries. The input vector is staged in shared memory once per block.
// Lane l adds chunks l, l + 32, l + 64, … of each row in increasing order,
// exactly as warp_dot2, so both forms give the same sums.

constexpr int kStreamWarps = 4;

// The 16-byte loads of one step of a row pair: chunks c + 32u of both rows.
struct StepLoads {
  uint4 a[4], b[4];
};

__device__ __forceinline__ void issue_step(StepLoads& s, const uint4* ra, const uint4* rb, int c,
                                           int chunks) {
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    if (c + 32 * u < chunks) {
      s.a[u] = ld_stream(ra + c + 32 * u);
      s.b[u] = ld_stream(rb + c + 32 * u);
    }
  }
}

// Stages the input vector into sx (cols / 8 chunks): a copy, or with
// in.norm set the RMSNorm of x computed exactly as rmsnorm_kernel does —
// virtual thread t of its block (rmsnorm_threads(cols) of them) sums the
// squares of chunks t, t + NT, … in order, virtual warps reduce with the
// same butterfly, and warp 0 reduces the warp sums.
template <typename T>
__device__ __forceinline__ void stage_input(uint4* sx, const GemvInput<T>& in, int cols) {
  const int chunks = cols / 8;
  const uint4* x = reinterpret_cast<const uint4*>(in.x);
  if (!in.norm) {
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) sx[c] = x[c];
    __syncthreads();
    return;
  }
  __shared__ float part[32];
  const int nt = rmsnorm_threads(cols);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int v0 = 0; v0 < nt; v0 += blockDim.x) {
    const int vt = v0 + threadIdx.x;  // virtual thread; whole virtual warps are in or out
    if (v0 + warp * 32 < nt) {
      float ss = 0.f;
      for (int c = vt; c < chunks; c += nt) {
        float v[8];
        unpack8<T>(x[c], v);
#pragma unroll
        for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
      }
      ss = warp_sum(ss);
      if (lane == 0) part[vt / 32] = ss;
    }
  }
  __syncthreads();
  if (warp == 0) {
    float t = lane < nt / 32 ? part[lane] : 0.f;
    t = warp_sum(t);
    if (lane == 0) part[0] = t;
  }
  __syncthreads();
  const float r = rsqrtf(part[0] / float(cols) + in.eps);
  const uint4* wr = reinterpret_cast<const uint4*>(in.norm);
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    float v[8], w[8];
    unpack8<T>(x[c], v);
    unpack8<T>(wr[c], w);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = w[j] * round_t<T>(v[j] * r);
    sx[c] = pack8<T>(v);
  }
  __syncthreads();
}

// Job: which rows a pair p is (rows(p, r0, r1)), how many pairs there are,
// and what lane 0 does with the two sums (store).
template <typename T, class Job>
__global__ void __launch_bounds__(kStreamWarps * 32)
    stream_kernel(const T* __restrict__ w, int k, const GemvInput<T> in, const Job job) {
  extern __shared__ __align__(16) uint4 sx[];
  const int lane = threadIdx.x % 32;
  const int stride = gridDim.x * kStreamWarps;
  const int chunks = k / 8;
  const int pairs = job.pairs();
  int p = blockIdx.x * kStreamWarps + threadIdx.x / 32;
  auto row = [&](int r) { return reinterpret_cast<const uint4*>(w + int64_t(r) * k); };
  StepLoads cur;
  int r0 = 0, r1 = 0;
  if (p < pairs) {
    job.rows(p, r0, r1);
    issue_step(cur, row(r0), row(r1), lane, chunks);  // weights only: before the wait
  }
  grid_wait();
  grid_release();
  stage_input<T>(sx, in, k);
  while (p < pairs) {
    float acc0 = 0.f, acc1 = 0.f;
    for (int c = lane; c < chunks; c += 128) {
      // The next step: the next chunks of this pair, else the first of the next.
      StepLoads nxt;
      int nc = c + 128, np = p, n0 = r0, n1 = r1;
      if (nc >= chunks) {
        np = p + stride;
        nc = lane;
        if (np < pairs) job.rows(np, n0, n1);
      }
      if (np < pairs) issue_step(nxt, row(n0), row(n1), nc, chunks);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (c + 32 * u < chunks) {
          const uint4 xv = sx[c + 32 * u];
          acc0 += dot8<T>(cur.a[u], xv);
          acc1 += dot8<T>(cur.b[u], xv);
        }
      }
      cur = nxt;
    }
    const float s0 = warp_sum(acc0), s1 = warp_sum(acc1);
    if (lane == 0) job.store(p, r0, r1, s0, s1);
    p += stride;
    if (p < pairs) job.rows(p, r0, r1);
  }
}

// Rows 2p and 2p + 1 (the last pair of an odd count repeats its row).
struct RowPairs {
  int n_rows;
  __device__ int pairs() const { return (n_rows + 1) / 2; }
  __device__ void rows_of(int p, int& r0, int& r1) const {
    r0 = 2 * p;
    r1 = min(r0 + 1, n_rows - 1);
  }
};

struct JobF32 : RowPairs {
  float* y;
  __device__ void rows(int p, int& r0, int& r1) const { rows_of(p, r0, r1); }
  __device__ void store(int, int r0, int r1, float s0, float s1) const {
    y[r0] = s0;
    if (r1 != r0) y[r1] = s1;
  }
};

template <typename T>
struct JobResidual : RowPairs {
  T* x;
  __device__ void rows(int p, int& r0, int& r1) const { rows_of(p, r0, r1); }
  __device__ void store(int, int r0, int r1, float s0, float s1) const {
    x[r0] = from_f<T>(to_f(x[r0]) + round_t<T>(s0));
    if (r1 != r0) x[r1] = from_f<T>(to_f(x[r1]) + round_t<T>(s1));
  }
};

template <typename T>
struct JobQkvRope {
  QkvTarget<T> t;
  __device__ int pairs() const { return (t.q_heads + 2 * t.kv_heads) * (t.head_dim / 2); }
  __device__ void rows(int p, int& r0, int& r1) const {
    const int half = t.head_dim / 2;
    r0 = (p / half) * t.head_dim + p % half;
    r1 = r0 + half;
  }
  __device__ void store(int p, int r0, int r1, float a, float b) const {
    const int half = t.head_dim / 2;
    store_pair<T>(a + to_f(t.bias[r0]), b + to_f(t.bias[r1]), p / half, p % half, t.state[0],
                  t.state[2], 0, t);
  }
};

template <typename T>
struct JobGateUp {
  T* act;
  int inter;
  __device__ int pairs() const { return inter; }
  __device__ void rows(int j, int& r0, int& r1) const {
    r0 = j;
    r1 = inter + j;
  }
  __device__ void store(int j, int, int, float g, float u) const {
    act[j] = from_f<T>(swiglu<T>(g, u));
  }
};

// Blocks of the persistent grid: what fits on the GPU at once, at most one
// per kStreamWarps pairs.
template <typename T, class Job>
void launch_stream(const Linear<T>& W, const GemvInput<T>& in, const Job& job, int pairs,
                   const Launch& l) {
  if (W.cols % 8) throw Error(LMD_ERR_UNSUPPORTED, "matrix-vector: columns must be a multiple of 8");
  if (W.quantized())
    throw Error(LMD_ERR_ENGINE, "stream matrix-vector: quantized weights take the warp form");
  auto kernel = stream_kernel<T, Job>;
  const size_t smem = size_t(W.cols) * sizeof(T);
  if (smem > (48 << 10))  // the limit without the attribute
    CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  CU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStreamWarps * 32, smem));
  int sms = l.sms;
  if (sms <= 0) {
    int dev = 0;
    CU_CHECK(cudaGetDevice(&dev));
    CU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  }
  const int64_t want = (int64_t(pairs) + kStreamWarps - 1) / kStreamWarps;
  const int blocks = int(std::max<int64_t>(1, std::min<int64_t>(want, int64_t(std::max(1, per_sm)) * sms)));
  launch(l, kernel, blocks, kStreamWarps * 32, smem, W.w, W.cols, in, job);
}
}  // namespace

template <typename T>
void linear_gemv(const Linear<T>& W, const T* x, float* y, const Launch& l) {
  if (W.quantized()) return quant_gemv<T>(W, GemvInput<T>{x, nullptr, 0.f}, y, l);
  launch(l, gemv_kernel<T>, blocks_for((W.rows + 1) / 2), kGemvWarps * 32, 0, W.w, x, y, W.rows,
         W.cols);
}

template <typename T>
void linear_gemv_qkv_rope(const Linear<T>& W, const T* x, const QkvTarget<T>& t, const Launch& l) {
  if (W.quantized()) return quant_gemv_qkv_rope<T>(W, GemvInput<T>{x, nullptr, 0.f}, t, l);
  const int pairs = (t.q_heads + 2 * t.kv_heads) * t.head_dim / 2;
  launch(l, gemv_qkv_rope_kernel<T>, blocks_for(pairs), kGemvWarps * 32, 0, W.w, x, W.cols, t);
}

template <typename T>
void linear_gemv_gate_up(const Linear<T>& W, const T* x, T* act, const Launch& l) {
  const int inter = W.rows / 2;
  if (W.quantized()) return quant_gemv_gate_up<T>(W, GemvInput<T>{x, nullptr, 0.f}, act, l);
  launch(l, gemv_gate_up_kernel<T>, blocks_for(inter), kGemvWarps * 32, 0, W.w, x, inter, W.cols,
         act);
}

template <typename T>
void stream_gemv(const Linear<T>& W, const GemvInput<T>& in, float* y, const Launch& l) {
  if (W.quantized()) return quant_gemv<T>(W, in, y, l);
  JobF32 job;
  job.n_rows = W.rows;
  job.y = y;
  launch_stream<T>(W, in, job, (W.rows + 1) / 2, l);
}

template <typename T>
void stream_gemv_residual(const Linear<T>& W, const GemvInput<T>& in, T* residual,
                          const Launch& l) {
  if (W.quantized()) return quant_gemv_residual<T>(W, in, residual, l);
  JobResidual<T> job;
  job.n_rows = W.rows;
  job.x = residual;
  launch_stream<T>(W, in, job, (W.rows + 1) / 2, l);
}

template <typename T>
void stream_gemv_qkv_rope(const Linear<T>& W, const GemvInput<T>& in, const QkvTarget<T>& t,
                          const Launch& l) {
  if (W.quantized()) return quant_gemv_qkv_rope<T>(W, in, t, l);
  JobQkvRope<T> job{t};
  launch_stream<T>(W, in, job, (t.q_heads + 2 * t.kv_heads) * t.head_dim / 2, l);
}

template <typename T>
void stream_gemv_gate_up(const Linear<T>& W, const GemvInput<T>& in, T* act, const Launch& l) {
  if (W.quantized()) return quant_gemv_gate_up<T>(W, in, act, l);
  JobGateUp<T> job{act, W.rows / 2};
  launch_stream<T>(W, in, job, W.rows / 2, l);
}

#define LMDCU_INSTANTIATE(T)                                                                    \
  template void linear_gemv<T>(const Linear<T>&, const T*, float*, const Launch&);              \
  template void linear_gemv_qkv_rope<T>(const Linear<T>&, const T*, const QkvTarget<T>&,        \
                                        const Launch&);                                         \
  template void linear_gemv_gate_up<T>(const Linear<T>&, const T*, T*, const Launch&);        \
  template void stream_gemv<T>(const Linear<T>&, const GemvInput<T>&, float*, const Launch&);    \
  template void stream_gemv_residual<T>(const Linear<T>&, const GemvInput<T>&, T*,              \
                                        const Launch&);                                         \
  template void stream_gemv_qkv_rope<T>(const Linear<T>&, const GemvInput<T>&,                  \
                                        const QkvTarget<T>&, const Launch&);                    \
  template void stream_gemv_gate_up<T>(const Linear<T>&, const GemvInput<T>&, T*, const Launch&);

LMDCU_INSTANTIATE(__half)
LMDCU_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
