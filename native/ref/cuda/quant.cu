#include "quant.h"

#include <cuda_fp8.h>

#include "attention_tiles.cuh"  // attn::Mma, the m16n8k16 tensor-core product
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

// ---------------------------------------------------------------------------
// One token (decode). A block owns a tile of kRows = 16 rows (rows g and
// g + 8 of lane (g, t) = (lane / 4, lane % 4), the A operand of
// mma.m16n8k16) and its kWarps warps split the columns in steps of 256
// bytes of each row: warp w takes steps w, w + kWarps, … In a step, lane
// (g, t) loads bytes [64t, 64t + 64) of its two rows (four 16-byte loads
// each) and makes one mma of each of their sixteen 32-bit words: the word's
// bytes (0, 1) and (2, 3) are the A pairs of columns (2t, 2t + 1) and
// (2t + 8, 2t + 9), and the B pairs of the same columns are the x values of
// the same bytes. A dot product may take its terms in any order, so this
// permutation of k is exact; every column of B holds the same x, so column 0
// of C (c0: row g, c2: row g + 8) is the tile's partial sums.

constexpr int kWarps = 4;        // warps of a block
constexpr int kRows = 16;        // rows of a block's tile
constexpr int kStepChunks = 16;  // 16-byte chunks of a row in one warp step (256 bytes)

// The four weights of a 32-bit word as two exact T pairs: lo = (w0, w1),
// hi = (w2, w3).
template <typename T, QFormat F> struct Widen;
// int8 to fp16: a byte b becomes the half 1024 + (b ^ 0x80) by a byte
// permute (its bits 0x64 | b ^ 0x80), minus 1152 in one half2 subtraction.
template <> struct Widen<__half, QFormat::Int8> {
  __device__ static void pairs(uint32_t w, uint32_t& lo, uint32_t& hi) {
    const uint32_t u = w ^ 0x80808080u;
    const uint32_t a = __byte_perm(u, 0x64u, 0x4140u), b = __byte_perm(u, 0x64u, 0x4342u);
    asm("sub.f16x2 %0, %1, %2;\n" : "=r"(lo) : "r"(a), "r"(0x64806480u));
    asm("sub.f16x2 %0, %1, %2;\n" : "=r"(hi) : "r"(b), "r"(0x64806480u));
  }
};
// int8 to bf16: through fp32 (Q<Int8>::decode4), packed in pairs.
template <> struct Widen<__nv_bfloat16, QFormat::Int8> {
  __device__ static void pairs(uint32_t w, uint32_t& lo, uint32_t& hi) {
    float f[4];
    Q<QFormat::Int8>::decode4(w, f);
    lo = pack2<__nv_bfloat16>(f[0], f[1]);
    hi = pack2<__nv_bfloat16>(f[2], f[3]);
  }
};
// E4M3 to fp16: one conversion a pair (sm_89 and newer).
template <> struct Widen<__half, QFormat::Fp8> {
  __device__ static void pairs(uint32_t w, uint32_t& lo, uint32_t& hi) {
    const __half2_raw a = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w & 0xffffu), __NV_E4M3);
    const __half2_raw b = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w >> 16), __NV_E4M3);
    lo = uint32_t(a.x) | (uint32_t(a.y) << 16);
    hi = uint32_t(b.x) | (uint32_t(b.y) << 16);
  }
};
// E4M3 to bf16 (exact: E4M3's exponents and 3-bit significands fit).
template <> struct Widen<__nv_bfloat16, QFormat::Fp8> {
  __device__ static void pairs(uint32_t w, uint32_t& lo, uint32_t& hi) {
    float f[4];
    Q<QFormat::Fp8>::decode4(w, f);
    lo = pack2<__nv_bfloat16>(f[0], f[1]);
    hi = pack2<__nv_bfloat16>(f[2], f[3]);
  }
};

// A warp's loads of one step s: chunks 16s + 4t + i of rows g (lo) and
// g + 8 (hi); zeros past the end of the row.
struct QStep {
  uint4 lo[4], hi[4];
};

__device__ __forceinline__ void load_step(QStep& st, const uint4* lo, const uint4* hi, int s,
                                          int t, int chunks) {
  const int c = s * kStepChunks + 4 * t;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (c + i < chunks) {
      st.lo[i] = ld_stream(lo + c + i);
      st.hi[i] = ld_stream(hi + c + i);
    } else {
      st.lo[i] = st.hi[i] = make_uint4(0, 0, 0, 0);
    }
  }
}

// x in shared memory: 16-byte chunks of 8 values, chunk c at c ^ ((c >> 3) & 3),
// so that the four lane positions t (chunks 8t + m of a step) hit four
// different bank groups.
__device__ __forceinline__ int swizzle(int c) { return c ^ ((c >> 3) & 3); }

// The sixteen mma of one step: acc[i % 2] for the weight chunk i.
template <typename T, QFormat F>
__device__ __forceinline__ void step_mma(float (&acc)[2][4], const QStep& w, const uint4* sx,
                                         int s, int t) {
  const int base = s * 2 * kStepChunks + 8 * t;  // x chunks of bytes [64t, 64t + 64) of step s
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint4 x0 = sx[swizzle(base + 2 * i)], x1 = sx[swizzle(base + 2 * i + 1)];
    const uint32_t xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
    const uint32_t wl[4] = {w.lo[i].x, w.lo[i].y, w.lo[i].z, w.lo[i].w};
    const uint32_t wh[4] = {w.hi[i].x, w.hi[i].y, w.hi[i].z, w.hi[i].w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t a[4];
      Widen<T, F>::pairs(wl[j], a[0], a[2]);
      Widen<T, F>::pairs(wh[j], a[1], a[3]);
      attn::Mma<T>::run(acc[i % 2], a, xv[2 * j], xv[2 * j + 1]);
    }
  }
}

// Stages the input vector into sx (swizzled, zeros up to `padded` chunks): a
// copy, or with in.norm set the RMSNorm of x exactly as rmsnorm_kernel
// computes it — virtual thread v of its block (rmsnorm_threads(cols) of them)
// sums the squares of chunks v, v + NT, … in order, virtual warps reduce
// with the same butterfly, and warp 0 reduces the warp sums. Loads go out
// kStageBatch at a time, so that staging takes a few L2 round trips, not one
// a chunk.
constexpr int kStageBatch = 4;

template <typename T>
__device__ __forceinline__ void stage_x(uint4* sx, const GemvInput<T>& in, int cols, int padded) {
  const int chunks = cols / 8, nb = blockDim.x, tid = threadIdx.x;
  const uint4* x = reinterpret_cast<const uint4*>(in.x);
  const uint4 zero = make_uint4(0, 0, 0, 0);
  if (!in.norm) {
    for (int c0 = tid; c0 < padded; c0 += kStageBatch * nb) {
      uint4 v[kStageBatch];
#pragma unroll
      for (int u = 0; u < kStageBatch; ++u) {
        const int c = c0 + u * nb;
        v[u] = c < chunks ? __ldg(x + c) : zero;
      }
#pragma unroll
      for (int u = 0; u < kStageBatch; ++u)
        if (c0 + u * nb < padded) sx[swizzle(c0 + u * nb)] = v[u];
    }
    __syncthreads();
    return;
  }
  __shared__ float part[32];
  const int nt = rmsnorm_threads(cols);
  const int warp = tid / 32, lane = tid % 32;
  for (int v0 = 0; v0 < nt; v0 += kStageBatch * nb) {
    uint4 first[kStageBatch];  // the first chunk of each virtual thread (usually its only one)
#pragma unroll
    for (int u = 0; u < kStageBatch; ++u) {
      const int vt = v0 + u * nb + tid;
      first[u] = vt < nt && vt < chunks ? __ldg(x + vt) : zero;
    }
#pragma unroll
    for (int u = 0; u < kStageBatch; ++u) {
      const int vt = v0 + u * nb + tid;
      float ss = 0.f, v[8];
      unpack8<T>(first[u], v);
#pragma unroll
      for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
      for (int c = vt + nt; c < chunks; c += nt) {
        unpack8<T>(__ldg(x + c), v);
#pragma unroll
        for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
      }
      if (v0 + u * nb + warp * 32 < nt) {  // whole virtual warps are in or out
        ss = warp_sum(ss);
        if (lane == 0) part[vt / 32] = ss;
      }
    }
  }
  __syncthreads();
  if (warp == 0) {
    float a = lane < nt / 32 ? part[lane] : 0.f;
    a = warp_sum(a);
    if (lane == 0) part[0] = a;
  }
  __syncthreads();
  const float r = rsqrtf(part[0] / float(cols) + in.eps);
  const uint4* wr = reinterpret_cast<const uint4*>(in.norm);
  for (int c0 = tid; c0 < padded; c0 += kStageBatch * nb) {
    uint4 xv[kStageBatch], wv[kStageBatch];
#pragma unroll
    for (int u = 0; u < kStageBatch; ++u) {
      const int c = c0 + u * nb;
      xv[u] = c < chunks ? __ldg(x + c) : zero;
      wv[u] = c < chunks ? __ldg(wr + c) : zero;
    }
#pragma unroll
    for (int u = 0; u < kStageBatch; ++u) {
      const int c = c0 + u * nb;
      if (c >= padded) continue;
      float v[8], w[8];
      unpack8<T>(xv[u], v);
      unpack8<T>(wv[u], w);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = w[j] * round_t<T>(v[j] * r);
      sx[swizzle(c)] = c < chunks ? pack8<T>(v) : zero;
    }
  }
  __syncthreads();
}

// Job: which row of the matrix tile row i (0..15) is (row), and what thread
// i < 8 does with the scaled sums of tile rows i and i + 8 (store).
template <typename T, QFormat F, class Job>
__global__ void __launch_bounds__(kWarps * 32, 4)
    qgemv_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scale, int cols,
                 const GemvInput<T> in, const Job job) {
  extern __shared__ __align__(16) uint4 sx[];
  __shared__ float red[kWarps][kRows];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int tile = blockIdx.x;
  const int chunks = cols / 16;
  const int steps = (chunks + kStepChunks - 1) / kStepChunks;
  const uint4* lo = reinterpret_cast<const uint4*>(q + int64_t(job.row(tile, g)) * cols);
  const uint4* hi = reinterpret_cast<const uint4*>(q + int64_t(job.row(tile, g + 8)) * cols);
  // Two steps in flight: A and B alternate, each refilled as soon as it has
  // been multiplied. The first two are requested before the wait, so they
  // overlap the end of the kernel that produces x.
  QStep A, B;
  int s = warp;
  if (s < steps) load_step(A, lo, hi, s, t, chunks);
  if (s + kWarps < steps) load_step(B, lo, hi, s + kWarps, t, chunks);
  grid_wait();
  grid_release();
  stage_x<T>(sx, in, cols, steps * 2 * kStepChunks);
  float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  for (; s < steps; s += 2 * kWarps) {
    step_mma<T, F>(acc, A, sx, s, t);
    if (s + 2 * kWarps < steps) load_step(A, lo, hi, s + 2 * kWarps, t, chunks);
    if (s + kWarps >= steps) break;
    step_mma<T, F>(acc, B, sx, s + kWarps, t);
    if (s + 3 * kWarps < steps) load_step(B, lo, hi, s + 3 * kWarps, t, chunks);
  }
  if (t == 0) {
    red[warp][g] = acc[0][0] + acc[1][0];
    red[warp][g + 8] = acc[0][2] + acc[1][2];
  }
  __syncthreads();
  if (threadIdx.x < 8) {
    const int i = threadIdx.x;
    float a = 0.f, b = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      a += red[w][i];
      b += red[w][i + 8];
    }
    job.store(tile, i, a * scale[job.row(tile, i)], b * scale[job.row(tile, i + 8)]);
  }
}

// Rows 16·tile + i; past the last row, the last row again (read, not stored).
struct RowTiles {
  int n_rows;
  int tiles() const { return (n_rows + kRows - 1) / kRows; }
  __device__ int row(int tile, int i) const { return min(tile * kRows + i, n_rows - 1); }
  __device__ bool has(int tile, int i) const { return tile * kRows + i < n_rows; }
};

struct JobY : RowTiles {
  float* y;
  __device__ void store(int tile, int i, float a, float b) const {
    if (has(tile, i)) y[tile * kRows + i] = a;
    if (has(tile, i + 8)) y[tile * kRows + i + 8] = b;
  }
};

template <typename T>
struct JobResidual : RowTiles {
  T* x;
  __device__ void add(int r, float s) const { x[r] = from_f<T>(to_f(x[r]) + round_t<T>(s)); }
  __device__ void store(int tile, int i, float a, float b) const {
    if (has(tile, i)) add(tile * kRows + i, a);
    if (has(tile, i + 8)) add(tile * kRows + i + 8, b);
  }
};

// Eight rotation pairs p = 8·tile + i of one head (hd / 2 is a multiple of 8):
// rows (p / half)·hd + p % half and the row half further.
template <typename T>
struct JobQkvRope {
  QkvTarget<T> t;
  int tiles() const { return (t.q_heads + 2 * t.kv_heads) * (t.head_dim / 2) / 8; }
  __device__ int row(int tile, int i) const {
    const int half = t.head_dim / 2, p = 8 * tile + (i & 7);
    return (p / half) * t.head_dim + p % half + (i < 8 ? 0 : half);
  }
  __device__ void store(int tile, int i, float a, float b) const {
    const int half = t.head_dim / 2, p = 8 * tile + i;
    store_pair<T>(a + to_f(t.bias[row(tile, i)]), b + to_f(t.bias[row(tile, i + 8)]), p / half,
                  p % half, t.state[0], t.state[2], 0, t);
  }
};

// Gate rows 8·tile + i and the up rows inter further.
template <typename T>
struct JobGateUp {
  T* act;
  int inter;
  int tiles() const { return inter / 8; }
  __device__ int row(int tile, int i) const { return 8 * tile + (i & 7) + (i < 8 ? 0 : inter); }
  __device__ void store(int tile, int i, float g, float u) const {
    act[8 * tile + i] = from_f<T>(swiglu<T>(g, u));
  }
};

template <typename T, QFormat F, class Job>
void launch_qkernel(const Linear<T>& W, const GemvInput<T>& in, const Job& job, const Launch& l) {
  const int steps = int(ceil_div(W.cols / 16, kStepChunks));
  const size_t smem = size_t(steps) * 2 * kStepChunks * 16;
  auto kernel = qgemv_kernel<T, F, Job>;
  if (smem > (48 << 10))  // the limit without the attribute
    CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  if (job.tiles() > 0) launch(l, kernel, job.tiles(), kWarps * 32, smem, W.q, W.scale, W.cols, in, job);
}

template <typename T, class Job>
void launch_qjob(const Linear<T>& W, const GemvInput<T>& in, const Job& job, const Launch& l) {
  if (!W.quantized() || W.cols % 16 || !in.x)
    throw Error(LMD_ERR_ENGINE, "quantized matrix-vector: needs quantized weights with columns "
                                "in multiples of 16 and an input");
  if (W.format == QFormat::Int8)
    launch_qkernel<T, QFormat::Int8>(W, in, job, l);
  else
    launch_qkernel<T, QFormat::Fp8>(W, in, job, l);
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
  if (n == 0) return;
  if (f == QFormat::Int8)
    launch(l, dequantize_kernel<T, QFormat::Int8>, n, 256, 0, q, scale, rows, cols, w);
  else
    launch(l, dequantize_kernel<T, QFormat::Fp8>, n, 256, 0, q, scale, rows, cols, w);
}

template <typename T>
void quant_gemv(const Linear<T>& W, const GemvInput<T>& in, float* y, const Launch& l) {
  JobY job;
  job.n_rows = W.rows;
  job.y = y;
  launch_qjob<T>(W, in, job, l);
}

template <typename T>
void quant_gemv_residual(const Linear<T>& W, const GemvInput<T>& in, T* residual,
                         const Launch& l) {
  JobResidual<T> job;
  job.n_rows = W.rows;
  job.x = residual;
  launch_qjob<T>(W, in, job, l);
}

template <typename T>
void quant_gemv_qkv_rope(const Linear<T>& W, const GemvInput<T>& in, const QkvTarget<T>& t,
                         const Launch& l) {
  if (t.head_dim % 16)
    throw Error(LMD_ERR_ENGINE, "quantized q|k|v: head_dim must be a multiple of 16");
  launch_qjob<T>(W, in, JobQkvRope<T>{t}, l);
}

template <typename T>
void quant_gemv_gate_up(const Linear<T>& W, const GemvInput<T>& in, T* act, const Launch& l) {
  if (W.rows % 16)
    throw Error(LMD_ERR_ENGINE, "quantized gate|up: the intermediate size must be a multiple of 8");
  launch_qjob<T>(W, in, JobGateUp<T>{act, W.rows / 2}, l);
}

#define LMDCU_QUANT_INSTANTIATE(T)                                                              \
  template void launch_dequantize<T>(QFormat, const uint8_t*, const float*, int, int, T*,       \
                                     const Launch&);                                            \
  template void quant_gemv<T>(const Linear<T>&, const GemvInput<T>&, float*, const Launch&);    \
  template void quant_gemv_residual<T>(const Linear<T>&, const GemvInput<T>&, T*,               \
                                       const Launch&);                                          \
  template void quant_gemv_qkv_rope<T>(const Linear<T>&, const GemvInput<T>&,                   \
                                       const QkvTarget<T>&, const Launch&);                     \
  template void quant_gemv_gate_up<T>(const Linear<T>&, const GemvInput<T>&, T*, const Launch&);
LMDCU_QUANT_INSTANTIATE(__half)
LMDCU_QUANT_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
