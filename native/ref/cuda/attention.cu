#include "attention.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace lmdcu {

namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr float kLog2e = 1.4426950408889634f;

// ---------------------------------------------------------------------------
// Tensor-core helpers (sm_80+): mma.sync m16n8k16 with fp32 accumulators,
// ldmatrix for operand fragments, cp.async for global→shared tiles.

template <typename T> struct Mma;
template <> struct Mma<__half> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <> struct Mma<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 16 bytes global→shared; zero-filled when !valid (nothing is read then).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)),
               "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// ---------------------------------------------------------------------------
// Prefill: 64 query rows per block (16 per warp), 64 keys per step, K and V
// tiles double-buffered in shared memory. Scores and probabilities stay in
// registers: the accumulator layout of S = Q·Kᵀ is reused as the A operand of
// P·V.

constexpr int kBr = 64, kBc = 64;

template <int HD> __host__ __device__ constexpr int smem_ld() { return HD + 8; }  // pad: conflict-free ldmatrix rows
template <int HD> __host__ __device__ constexpr int prefill_smem_bytes() {
  return (kBr + 4 * kBc) * smem_ld<HD>() * 2;
}

template <typename T, int HD>
__global__ void __launch_bounds__(128)
    flash_prefill_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                         const T* __restrict__ vc, int cap, const int32_t* __restrict__ state,
                         int n, int q_heads, int group, float scale_log2, T* __restrict__ out) {
  constexpr int LD = smem_ld<HD>();
  constexpr int CH = HD / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + kBr * LD;       // two buffers of kBc rows
  T* sV = sK + 2 * kBc * LD;   // two buffers of kBc rows

  const int tile = gridDim.x - 1 - blockIdx.x;  // the longest rows first
  const int h = blockIdx.y, kvh = h / group;
  const int start = state[0];
  const int q0 = tile * kBr;
  const int L = start + n;
  const int kv_end = min(L, start + q0 + kBr);
  const int n_kv = (kv_end + kBc - 1) / kBc;
  const int q_ld = q_heads * HD;
  const T* kbase = kc + int64_t(kvh) * cap * HD;
  const T* vbase = vc + int64_t(kvh) * cap * HD;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;

  for (int c = tid; c < kBr * CH; c += 128) {
    const int r = c / CH, cc = c % CH;
    const bool ok = q0 + r < n;
    const T* src = q + int64_t(ok ? q0 + r : 0) * q_ld + h * HD + cc * 8;
    cp_async16(sQ + r * LD + cc * 8, src, ok);
  }
  auto load_kv = [&](int j, int buf) {
    const int kv0 = j * kBc;
    T* dk = sK + buf * kBc * LD;
    T* dv = sV + buf * kBc * LD;
    for (int c = tid; c < kBc * CH; c += 128) {
      const int r = c / CH, cc = c % CH;
      const bool ok = kv0 + r < L;
      const int64_t off = int64_t(ok ? kv0 + r : 0) * HD + cc * 8;
      cp_async16(dk + r * LD + cc * 8, kbase + off, ok);
      cp_async16(dv + r * LD + cc * 8, vbase + off, ok);
    }
  };
  load_kv(0, 0);
  cp_async_commit();

  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;
  const int qpos_lo = start + q0 + r_lo, qpos_hi = qpos_lo + 8;
  uint32_t qf[HD / 16][4];
  float o[HD / 8][4];
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;

  for (int j = 0; j < n_kv; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_kv) load_kv(j + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < HD / 16; ++ks) {
        const int col = ks * 16 + 2 * t;
        qf[ks][0] = *reinterpret_cast<const uint32_t*>(sQ + r_lo * LD + col);
        qf[ks][1] = *reinterpret_cast<const uint32_t*>(sQ + r_hi * LD + col);
        qf[ks][2] = *reinterpret_cast<const uint32_t*>(sQ + r_lo * LD + col + 8);
        qf[ks][3] = *reinterpret_cast<const uint32_t*>(sQ + r_hi * LD + col + 8);
      }
    }
    const T* K = sK + buf * kBc * LD;
    const T* V = sV + buf * kBc * LD;

    float s[kBc / 8][4];
#pragma unroll
    for (int i = 0; i < kBc / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, K + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LD + ks * 16 +
                           ((lane >> 3) & 1) * 8);
        Mma<T>::run(s[2 * np], qf[ks], b[0], b[1]);
        Mma<T>::run(s[2 * np + 1], qf[ks], b[2], b[3]);
      }
    }

    const int kv0 = j * kBc;
    const bool need_mask = kv0 + kBc > start + q0 || kv0 + kBc > L;
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = s[nt][e] * scale_log2;
        if (need_mask) {
          const int col = kv0 + nt * 8 + 2 * t + (e & 1);
          const int qp = e < 2 ? qpos_lo : qpos_hi;
          if (col > qp || col >= L) v = -INFINITY;
        }
        s[nt][e] = v;
      }
      mx_lo = fmaxf(mx_lo, fmaxf(s[nt][0], s[nt][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[nt][2], s[nt][3]));
    }
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 1));
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 2));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 1));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 2));
    const float mn_lo = fmaxf(m_lo, mx_lo), mn_hi = fmaxf(m_hi, mx_hi);
    const float mu_lo = mn_lo == -INFINITY ? 0.f : mn_lo;
    const float mu_hi = mn_hi == -INFINITY ? 0.f : mn_hi;
    const float a_lo = exp2f(m_lo - mu_lo), a_hi = exp2f(m_hi - mu_hi);
    m_lo = mn_lo;
    m_hi = mn_hi;
    float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - mu_lo);
      s[nt][1] = exp2f(s[nt][1] - mu_lo);
      s[nt][2] = exp2f(s[nt][2] - mu_hi);
      s[nt][3] = exp2f(s[nt][3] - mu_hi);
      sum_lo += s[nt][0] + s[nt][1];
      sum_hi += s[nt][2] + s[nt][3];
    }
    l_lo = l_lo * a_lo + sum_lo;
    l_hi = l_hi * a_hi + sum_hi;
#pragma unroll
    for (int dt = 0; dt < HD / 8; ++dt) {
      o[dt][0] *= a_lo;
      o[dt][1] *= a_lo;
      o[dt][2] *= a_hi;
      o[dt][3] *= a_hi;
    }

#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, V + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dp * 16 +
                                 (lane >> 4) * 8);
        Mma<T>::run(o[2 * dp], a, b[0], b[1]);
        Mma<T>::run(o[2 * dp + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();
  }

  l_lo += __shfl_xor_sync(kFull, l_lo, 1);
  l_lo += __shfl_xor_sync(kFull, l_lo, 2);
  l_hi += __shfl_xor_sync(kFull, l_hi, 1);
  l_hi += __shfl_xor_sync(kFull, l_hi, 2);
  const float inv_lo = l_lo > 0.f ? 1.f / l_lo : 0.f;
  const float inv_hi = l_hi > 0.f ? 1.f / l_hi : 0.f;
  const int row_lo = q0 + r_lo, row_hi = q0 + r_hi;
#pragma unroll
  for (int dt = 0; dt < HD / 8; ++dt) {
    const int col = h * HD + dt * 8 + 2 * t;
    if (row_lo < n)
      *reinterpret_cast<uint32_t*>(out + int64_t(row_lo) * q_ld + col) =
          pack2<T>(o[dt][0] * inv_lo, o[dt][1] * inv_lo);
    if (row_hi < n)
      *reinterpret_cast<uint32_t*>(out + int64_t(row_hi) * q_ld + col) =
          pack2<T>(o[dt][2] * inv_hi, o[dt][3] * inv_hi);
  }
}

// ---------------------------------------------------------------------------
// Decode: one block per (split, kv head) serves the kv head's whole query
// group, so each key and value is read from memory once per step.

constexpr int kGroupMax = 8;   // query heads per kv head
constexpr int kTile = 128;     // positions scored per pass
constexpr int kDecWarps = 4;

template <typename T, int HD>
__global__ void __launch_bounds__(kDecWarps * 32)
    decode_split_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                        const T* __restrict__ vc, int cap, const int32_t* __restrict__ state,
                        int group, float scale_log2, int splits, float* __restrict__ part_o,
                        float* __restrict__ part_ml) {
  constexpr int LPK = HD / 8;        // lanes per key (8 values each)
  constexpr int KPW = 32 / LPK;      // keys per warp pass
  constexpr int RPP = kDecWarps * 32 / LPK;  // value rows per block pass
  const int split = blockIdx.x, kvh = blockIdx.y;
  const int L = state[0] + 1;
  int chunk = (L + splits - 1) / splits;
  chunk = max(64, (chunk + 15) / 16 * 16);
  const int p0 = split * chunk, p1 = min(L, p0 + chunk);
  const int h0 = kvh * group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (p0 >= p1) {
    if (tid < group) {
      part_ml[(int64_t(h0 + tid) * splits + split) * 2 + 0] = -INFINITY;
      part_ml[(int64_t(h0 + tid) * splits + split) * 2 + 1] = 0.f;
    }
    return;
  }
  __shared__ float s_p[kGroupMax][kTile];
  __shared__ float s_m[kGroupMax], s_l[kGroupMax], s_alpha[kGroupMax];
  __shared__ float s_red[kDecWarps][kGroupMax][HD];

  const int part = lane % LPK, sub = lane / LPK;
  const T* kbase = kc + int64_t(kvh) * cap * HD + part * 8;
  const T* vbase = vc + int64_t(kvh) * cap * HD + part * 8;

  float qr[kGroupMax][8];
#pragma unroll
  for (int gi = 0; gi < kGroupMax; ++gi) {
    if (gi < group) {
      const uint4 raw = *reinterpret_cast<const uint4*>(q + int64_t(h0 + gi) * HD + part * 8);
      const typename Types<T>::T2* p2 = reinterpret_cast<const typename Types<T>::T2*>(&raw);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        qr[gi][2 * i] = to_f(p2[i].x) * scale_log2;
        qr[gi][2 * i + 1] = to_f(p2[i].y) * scale_log2;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) qr[gi][i] = 0.f;
    }
  }
  if (tid < kGroupMax) {
    s_m[tid] = -INFINITY;
    s_l[tid] = 0.f;
  }
  float acc[kGroupMax][8];
#pragma unroll
  for (int gi = 0; gi < kGroupMax; ++gi)
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[gi][i] = 0.f;
  const int rg = tid / LPK;  // value row group

  for (int base = p0; base < p1; base += kTile) {
    const int cnt = min(kTile, p1 - base);
    // Scores of this tile, scaled to log2 units.
#pragma unroll 4
    for (int kb = warp * KPW; kb < cnt; kb += kDecWarps * KPW) {
      const int key = kb + sub;
      const bool ok = key < cnt;
      uint4 raw = make_uint4(0, 0, 0, 0);
      if (ok) raw = __ldcs(reinterpret_cast<const uint4*>(kbase + int64_t(base + key) * HD));
      const typename Types<T>::T2* p2 = reinterpret_cast<const typename Types<T>::T2*>(&raw);
      float kf[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        kf[2 * i] = to_f(p2[i].x);
        kf[2 * i + 1] = to_f(p2[i].y);
      }
#pragma unroll
      for (int gi = 0; gi < kGroupMax; ++gi) {
        if (gi < group) {
          float d = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) d = fmaf(qr[gi][i], kf[i], d);
#pragma unroll
          for (int off = LPK / 2; off > 0; off >>= 1) d += __shfl_xor_sync(kFull, d, off);
          if (ok && part == 0) s_p[gi][key] = d;
        }
      }
    }
    __syncthreads();
    // Softmax bookkeeping per query head.
    for (int gi = warp; gi < group; gi += kDecWarps) {
      float mx = -INFINITY;
      for (int i = lane; i < cnt; i += 32) mx = fmaxf(mx, s_p[gi][i]);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
      const float m_old = s_m[gi];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.f;
      for (int i = lane; i < cnt; i += 32) {
        const float p = exp2f(s_p[gi][i] - m_new);
        s_p[gi][i] = p;
        sum += p;
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off);
      if (lane == 0) {
        const float alpha = exp2f(m_old - m_new);
        s_alpha[gi] = alpha;
        s_l[gi] = s_l[gi] * alpha + sum;
        s_m[gi] = m_new;
      }
    }
    __syncthreads();
#pragma unroll
    for (int gi = 0; gi < kGroupMax; ++gi) {
      if (gi < group) {
        const float a = s_alpha[gi];
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[gi][i] *= a;
      }
    }
#pragma unroll 4
    for (int r = rg; r < cnt; r += RPP) {
      const uint4 raw = __ldcs(reinterpret_cast<const uint4*>(vbase + int64_t(base + r) * HD));
      const typename Types<T>::T2* p2 = reinterpret_cast<const typename Types<T>::T2*>(&raw);
      float vf[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        vf[2 * i] = to_f(p2[i].x);
        vf[2 * i + 1] = to_f(p2[i].y);
      }
#pragma unroll
      for (int gi = 0; gi < kGroupMax; ++gi) {
        if (gi < group) {
          const float p = s_p[gi][r];
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[gi][i] = fmaf(p, vf[i], acc[gi][i]);
        }
      }
    }
    __syncthreads();
  }

  // Sum the row groups: first inside the warp, then across warps.
#pragma unroll
  for (int gi = 0; gi < kGroupMax; ++gi) {
    if (gi < group) {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float v = acc[gi][i];
#pragma unroll
        for (int off = LPK; off < 32; off <<= 1) v += __shfl_xor_sync(kFull, v, off);
        if (lane < LPK) s_red[warp][gi][part * 8 + i] = v;
      }
    }
  }
  __syncthreads();
  for (int idx = tid; idx < group * HD; idx += kDecWarps * 32) {
    const int gi = idx / HD, d = idx % HD;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) v += s_red[w][gi][d];
    part_o[(int64_t(h0 + gi) * splits + split) * HD + d] = v;
  }
  if (tid < group) {
    part_ml[(int64_t(h0 + tid) * splits + split) * 2 + 0] = s_m[tid];
    part_ml[(int64_t(h0 + tid) * splits + split) * 2 + 1] = s_l[tid];
  }
}

// Decode, second form: every warp is its own split. A lane scores one key
// per pass (its whole row in flight, 16 bytes per load), the warp keeps an
// online softmax per query head, then it adds the 32 weighted value rows with
// each lane owning HD/32 dimensions (value rows loaded while the softmax runs).
// No block barrier after the query is staged.
template <int N> struct Raw;
template <> struct Raw<1> { using type = unsigned short; };
template <> struct Raw<2> { using type = uint32_t; };
template <> struct Raw<4> { using type = uint2; };

template <typename T, int DPL>
__device__ __forceinline__ void unpack_dims(const typename Raw<DPL>::type& r, float (&f)[DPL]) {
  const T* e = reinterpret_cast<const T*>(&r);
#pragma unroll
  for (int i = 0; i < DPL; ++i) f[i] = to_f(e[i]);
}

template <typename T, int HD>
__global__ void __launch_bounds__(kDecWarps * 32)
    decode_warp_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                       const T* __restrict__ vc, int cap, const int32_t* __restrict__ state,
                       int group, float scale_log2, int wsplits, float* __restrict__ part_o,
                       float* __restrict__ part_ml) {
  constexpr int DPL = HD >= 32 ? HD / 32 : 1;  // value dims per lane
  constexpr int PVL = HD / DPL;                // lanes that own value dims
  using RawV = typename Raw<DPL>::type;
  __shared__ __align__(16) float q_s[kGroupMax][HD];
  const int kvh = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int ws = blockIdx.x * kDecWarps + warp;
  const int L = state[0] + 1;
  int chunk = (L + wsplits - 1) / wsplits;
  chunk = max(32, (chunk + 31) / 32 * 32);
  const int w0 = ws * chunk, w1 = min(L, w0 + chunk);
  const int h0 = kvh * group;
  for (int i = threadIdx.x; i < group * HD; i += kDecWarps * 32)
    q_s[i / HD][i % HD] = to_f(q[int64_t(h0) * HD + i]) * scale_log2;
  __syncthreads();

  float m[kGroupMax], l[kGroupMax], o[kGroupMax][DPL];
#pragma unroll
  for (int gi = 0; gi < kGroupMax; ++gi) {
    m[gi] = -INFINITY;
    l[gi] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[gi][i] = 0.f;
  }
  const T* kb = kc + int64_t(kvh) * cap * HD;
  const T* vb = vc + int64_t(kvh) * cap * HD + (lane < PVL ? lane * DPL : 0);

  for (int base = w0; base < w1; base += 32) {
    const int key = base + lane;
    const bool ok = key < w1;
    const int nv = min(32, w1 - base);
    float sc[kGroupMax];
    {
      uint4 kr[HD / 8];
      const uint4* krow = reinterpret_cast<const uint4*>(kb + int64_t(ok ? key : base) * HD);
#pragma unroll
      for (int c = 0; c < HD / 8; ++c) kr[c] = __ldcs(krow + c);
#pragma unroll
      for (int gi = 0; gi < kGroupMax; ++gi) {
        if (gi < group) {
          float acc = 0.f;
#pragma unroll
          for (int c = 0; c < HD / 8; ++c) {
            const typename Types<T>::T2* p2 = reinterpret_cast<const typename Types<T>::T2*>(&kr[c]);
            const float4 qa = *reinterpret_cast<const float4*>(&q_s[gi][c * 8]);
            const float4 qb = *reinterpret_cast<const float4*>(&q_s[gi][c * 8 + 4]);
            acc = fmaf(qa.x, to_f(p2[0].x), acc);
            acc = fmaf(qa.y, to_f(p2[0].y), acc);
            acc = fmaf(qa.z, to_f(p2[1].x), acc);
            acc = fmaf(qa.w, to_f(p2[1].y), acc);
            acc = fmaf(qb.x, to_f(p2[2].x), acc);
            acc = fmaf(qb.y, to_f(p2[2].y), acc);
            acc = fmaf(qb.z, to_f(p2[3].x), acc);
            acc = fmaf(qb.w, to_f(p2[3].y), acc);
          }
          sc[gi] = ok ? acc : -INFINITY;
        } else {
          sc[gi] = -INFINITY;
        }
      }
    }
    RawV vr[32];
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      if (j < nv) {
        vr[j] = __ldcs(reinterpret_cast<const RawV*>(vb + int64_t(base + j) * HD));
      } else {
        vr[j] = RawV();
      }
    }
#pragma unroll
    for (int gi = 0; gi < kGroupMax; ++gi) {
      if (gi < group) {
        float mx = sc[gi];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
        const float m_new = fmaxf(m[gi], mx);
        const float mu = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m[gi] - mu);
        const float p = exp2f(sc[gi] - mu);
        float sum = p;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off);
        l[gi] = l[gi] * alpha + sum;
        m[gi] = m_new;
        sc[gi] = p;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[gi][i] *= alpha;
      }
    }
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      if (j < nv) {
        float v[DPL];
        unpack_dims<T, DPL>(vr[j], v);
#pragma unroll
        for (int gi = 0; gi < kGroupMax; ++gi) {
          if (gi < group) {
            const float pj = __shfl_sync(kFull, sc[gi], j);
#pragma unroll
            for (int i = 0; i < DPL; ++i) o[gi][i] = fmaf(pj, v[i], o[gi][i]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int gi = 0; gi < kGroupMax; ++gi) {
    if (gi < group) {
      const int64_t row = int64_t(h0 + gi) * wsplits + ws;
      if (lane < PVL) {
#pragma unroll
        for (int i = 0; i < DPL; ++i) part_o[row * HD + lane * DPL + i] = o[gi][i];
      }
      if (lane == 0) {
        part_ml[row * 2 + 0] = m[gi];
        part_ml[row * 2 + 1] = l[gi];
      }
    }
  }
}

// Combines the splits of each query head: grid (heads, hd/32), 8 warps; each
// warp sums every 8th split for 32 dimensions, then the warps add up.
constexpr int kCombineWarps = 8;

template <typename T>
__global__ void __launch_bounds__(kCombineWarps * 32)
    decode_combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                          int splits, int hd, T* __restrict__ out) {
  extern __shared__ float weight[];  // splits
  __shared__ float red[kCombineWarps][32];
  __shared__ float s_max, s_den;
  const int h = blockIdx.x, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int d = blockIdx.y * 32 + lane;
  const float* ml = part_ml + int64_t(h) * splits * 2;

  float mx = -INFINITY;
  for (int sp = tid; sp < splits; sp += kCombineWarps * 32)
    if (ml[2 * sp + 1] > 0.f) mx = fmaxf(mx, ml[2 * sp]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
  if (lane == 0) red[warp][0] = mx;
  __syncthreads();
  if (tid == 0) {
    float m = red[0][0];
    for (int w = 1; w < kCombineWarps; ++w) m = fmaxf(m, red[w][0]);
    s_max = m;
  }
  __syncthreads();
  const float M = s_max;
  float den = 0.f;
  for (int sp = tid; sp < splits; sp += kCombineWarps * 32) {
    const float l = ml[2 * sp + 1];
    const float w = l > 0.f ? exp2f(ml[2 * sp] - M) : 0.f;
    weight[sp] = w;
    den += w * l;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) den += __shfl_xor_sync(kFull, den, off);
  __syncthreads();  // red[][0] is read above; weights are complete below
  if (lane == 0) red[warp][0] = den;
  __syncthreads();
  if (tid == 0) {
    float t = 0.f;
    for (int w = 0; w < kCombineWarps; ++w) t += red[w][0];
    s_den = t;
  }
  __syncthreads();
  float num = 0.f;
  if (d < hd) {
    const float* po = part_o + int64_t(h) * splits * hd + d;
#pragma unroll 4
    for (int sp = warp; sp < splits; sp += kCombineWarps) {
      const float w = weight[sp];
      if (w != 0.f) num = fmaf(w, po[int64_t(sp) * hd], num);
    }
  }
  red[warp][lane] = num;
  __syncthreads();
  if (warp == 0 && d < hd) {
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < kCombineWarps; ++w) t += red[w][lane];
    out[int64_t(h) * hd + d] = from_f<T>(t / s_den);
  }
}

template <typename T, int HD>
void prefill_hd(const T* q, const T* kc, const T* vc, int cap, const int32_t* state, int n,
                int qh, int kvh, T* out, cudaStream_t s) {
  constexpr int bytes = prefill_smem_bytes<HD>();
  auto kernel = flash_prefill_kernel<T, HD>;
  CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const float scale_log2 = float(1.0 / std::sqrt(double(HD))) * kLog2e;
  const dim3 grid = dim3((n + kBr - 1) / kBr, qh);
  kernel<<<grid, 128, bytes, s>>>(q, kc, vc, cap, state, n, qh, qh / kvh, scale_log2, out);
  CU_CHECK_LAUNCH();
}

template <typename T, int HD>
void decode_hd(const T* q, const T* kc, const T* vc, int cap, const int32_t* state, int qh,
               int kvh, int splits, float* part_o, float* part_ml, T* out, cudaStream_t s) {
  const float scale_log2 = float(1.0 / std::sqrt(double(HD))) * kLog2e;
  // LMDREF_CUDA_ATTN=block: the first form (one split per block, three
  // phases with block barriers); the default is one split per warp.
  static const bool block_form = [] {
    const char* v = std::getenv("LMDREF_CUDA_ATTN");
    return v && std::string(v) == "block";
  }();
  if (block_form) {
    const dim3 grid = dim3(splits, kvh);
    decode_split_kernel<T, HD><<<grid, kDecWarps * 32, 0, s>>>(q, kc, vc, cap, state, qh / kvh,
                                                               scale_log2, splits, part_o, part_ml);
  } else {
    const dim3 grid = dim3(splits / kDecWarps, kvh);
    decode_warp_kernel<T, HD><<<grid, kDecWarps * 32, 0, s>>>(q, kc, vc, cap, state, qh / kvh,
                                                              scale_log2, splits, part_o, part_ml);
  }
  CU_CHECK_LAUNCH();
  const dim3 cgrid = dim3(qh, (HD + 31) / 32);
  decode_combine_kernel<T><<<cgrid, kCombineWarps * 32, splits * sizeof(float), s>>>(
      part_o, part_ml, splits, HD, out);
  CU_CHECK_LAUNCH();
}

}  // namespace

bool attention_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

template <typename T>
void launch_prefill_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                              const int32_t* state, int n, int q_heads, int kv_heads, int head_dim,
                              T* out, cudaStream_t s) {
  switch (head_dim) {
    case 16: return prefill_hd<T, 16>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, s);
    case 32: return prefill_hd<T, 32>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, s);
    case 64: return prefill_hd<T, 64>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, s);
    case 128: return prefill_hd<T, 128>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, s);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

template <typename T>
void launch_decode_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                             const int32_t* state, int q_heads, int kv_heads, int head_dim,
                             int splits, float* part_o, float* part_ml, T* out, cudaStream_t s) {
  if (q_heads / kv_heads > kGroupMax)
    throw Error(LMD_ERR_UNSUPPORTED, "decode attention: more than 8 query heads per kv head");
  switch (head_dim) {
    case 16: return decode_hd<T, 16>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, s);
    case 32: return decode_hd<T, 32>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, s);
    case 64: return decode_hd<T, 64>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, s);
    case 128: return decode_hd<T, 128>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, s);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

template void launch_prefill_attention<__half>(const __half*, const __half*, const __half*, int,
                                               const int32_t*, int, int, int, int, __half*,
                                               cudaStream_t);
template void launch_prefill_attention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, int, const int32_t*,
                                                      int, int, int, int, __nv_bfloat16*,
                                                      cudaStream_t);
template void launch_decode_attention<__half>(const __half*, const __half*, const __half*, int,
                                              const int32_t*, int, int, int, int, float*, float*,
                                              __half*, cudaStream_t);
template void launch_decode_attention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     const __nv_bfloat16*, int, const int32_t*,
                                                     int, int, int, int, float*, float*,
                                                     __nv_bfloat16*, cudaStream_t);

}  // namespace lmdcu
