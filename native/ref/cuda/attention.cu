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
// Prefill: 64·MT query rows per block (MT m16 tiles per warp, 4 warps), 64 keys
// per step, K and V tiles double-buffered in shared memory. Scores and
// probabilities stay in registers: the accumulator layout of S = Q·Kᵀ is
// reused as the A operand of P·V. With MT = 2 every K and V fragment read
// from shared memory feeds two tensor-core products instead of one (shared
// memory bandwidth is what bounds MT = 1 on Hopper); the Q fragments are then
// re-read from shared memory each step, as the registers hold two tiles of
// scores and outputs.

constexpr int kBc = 64;

template <int HD> __host__ __device__ constexpr int smem_ld() { return HD + 8; }  // pad: conflict-free ldmatrix rows
template <int HD, int MT> __host__ __device__ constexpr int prefill_smem_bytes() {
  return (64 * MT + 4 * kBc) * smem_ld<HD>() * 2;
}

// Rows [kv0, kv0 + ROWS) of one kv head's K and V into shared tiles (row
// stride smem_ld<HD>()) by a block's 128 threads, as cp.async requests for the
// caller to commit; rows from `end` on are zero-filled and not read.
template <typename T, int HD, int ROWS>
__device__ __forceinline__ void load_kv_tile(T* dk, T* dv, const T* kbase, const T* vbase,
                                             int kv0, int end, int tid) {
  constexpr int LD = smem_ld<HD>();
  constexpr int CH = HD / 8;
  for (int c = tid; c < ROWS * CH; c += 128) {
    const int r = c / CH, cc = c % CH;
    const bool ok = kv0 + r < end;
    const int64_t off = int64_t(ok ? kv0 + r : 0) * HD + cc * 8;
    cp_async16(dk + r * LD + cc * 8, kbase + off, ok);
    cp_async16(dv + r * LD + cc * 8, vbase + off, ok);
  }
}

template <typename T, int HD, int MT>
__global__ void __launch_bounds__(128, MT == 1 ? 2 : 1)
    flash_prefill_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                         const T* __restrict__ vc, int cap, const int32_t* __restrict__ state,
                         int n, int q_heads, int group, float scale_log2, T* __restrict__ out) {
  grid_wait();
  grid_release();
  constexpr int BR = 64 * MT;
  constexpr int LD = smem_ld<HD>();
  constexpr int CH = HD / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + BR * LD;        // two buffers of kBc rows
  T* sV = sK + 2 * kBc * LD;   // two buffers of kBc rows

  const int tile = gridDim.x - 1 - blockIdx.x;  // the longest rows first
  const int h = blockIdx.y, kvh = h / group;
  const int start = state[0];
  const int q0 = tile * BR;
  const int L = start + n;
  const int kv_end = min(L, start + q0 + BR);
  const int n_kv = (kv_end + kBc - 1) / kBc;
  const int q_ld = q_heads * HD;
  const T* kbase = kc + int64_t(kvh) * cap * HD;
  const T* vbase = vc + int64_t(kvh) * cap * HD;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;

  for (int c = tid; c < BR * CH; c += 128) {
    const int r = c / CH, cc = c % CH;
    const bool ok = q0 + r < n;
    const T* src = q + int64_t(ok ? q0 + r : 0) * q_ld + h * HD + cc * 8;
    cp_async16(sQ + r * LD + cc * 8, src, ok);
  }
  auto load_kv = [&](int j, int buf) {
    load_kv_tile<T, HD, kBc>(sK + buf * kBc * LD, sV + buf * kBc * LD, kbase, vbase, j * kBc, L,
                             tid);
  };
  load_kv(0, 0);
  cp_async_commit();

  // Warp w owns rows i·64 + w·16 + [0, 16) of the block for i < MT; lane
  // (g, t) holds rows g and g + 8 of each.
  int r_lo[MT], qpos_lo[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
    r_lo[i] = i * 64 + warp * 16 + g;
    qpos_lo[i] = start + q0 + r_lo[i];
  }
  uint32_t qf[MT == 1 ? HD / 16 : 1][4];  // MT = 1: Q fragments kept in registers
  float o[MT][HD / 8][4];
  float m_lo[MT], m_hi[MT], l_lo[MT], l_hi[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) o[i][d][0] = o[i][d][1] = o[i][d][2] = o[i][d][3] = 0.f;
    m_lo[i] = m_hi[i] = -INFINITY;
    l_lo[i] = l_hi[i] = 0.f;
  }

  for (int j = 0; j < n_kv; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_kv) load_kv(j + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if constexpr (MT == 1) {
      if (j == 0) {
#pragma unroll
        for (int ks = 0; ks < HD / 16; ++ks) {
          const int col = ks * 16 + 2 * t;
          qf[ks][0] = *reinterpret_cast<const uint32_t*>(sQ + r_lo[0] * LD + col);
          qf[ks][1] = *reinterpret_cast<const uint32_t*>(sQ + (r_lo[0] + 8) * LD + col);
          qf[ks][2] = *reinterpret_cast<const uint32_t*>(sQ + r_lo[0] * LD + col + 8);
          qf[ks][3] = *reinterpret_cast<const uint32_t*>(sQ + (r_lo[0] + 8) * LD + col + 8);
        }
      }
    }
    const T* K = sK + buf * kBc * LD;
    const T* V = sV + buf * kBc * LD;

    float s[MT][kBc / 8][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int nt = 0; nt < kBc / 8; ++nt) s[i][nt][0] = s[i][nt][1] = s[i][nt][2] = s[i][nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      uint32_t a[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        if constexpr (MT == 1) {
#pragma unroll
          for (int e = 0; e < 4; ++e) a[i][e] = qf[ks][e];
        } else {
          ldmatrix_x4(a[i], sQ + (i * 64 + warp * 16 + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8);
        }
      }
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, K + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LD + ks * 16 +
                           ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          Mma<T>::run(s[i][2 * np], a[i], b[0], b[1]);
          Mma<T>::run(s[i][2 * np + 1], a[i], b[2], b[3]);
        }
      }
    }

    const int kv0 = j * kBc;
    const bool need_mask = kv0 + kBc > start + q0 || kv0 + kBc > L;
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const int qp_lo = qpos_lo[i], qp_hi = qp_lo + 8;
      float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kBc / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = s[i][nt][e] * scale_log2;
          if (need_mask) {
            const int col = kv0 + nt * 8 + 2 * t + (e & 1);
            const int qp = e < 2 ? qp_lo : qp_hi;
            if (col > qp || col >= L) v = -INFINITY;
          }
          s[i][nt][e] = v;
        }
        mx_lo = fmaxf(mx_lo, fmaxf(s[i][nt][0], s[i][nt][1]));
        mx_hi = fmaxf(mx_hi, fmaxf(s[i][nt][2], s[i][nt][3]));
      }
      mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 1));
      mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 2));
      mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 1));
      mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 2));
      const float mn_lo = fmaxf(m_lo[i], mx_lo), mn_hi = fmaxf(m_hi[i], mx_hi);
      const float mu_lo = mn_lo == -INFINITY ? 0.f : mn_lo;
      const float mu_hi = mn_hi == -INFINITY ? 0.f : mn_hi;
      const float a_lo = exp2f(m_lo[i] - mu_lo), a_hi = exp2f(m_hi[i] - mu_hi);
      m_lo[i] = mn_lo;
      m_hi[i] = mn_hi;
      float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
      for (int nt = 0; nt < kBc / 8; ++nt) {
        s[i][nt][0] = exp2f(s[i][nt][0] - mu_lo);
        s[i][nt][1] = exp2f(s[i][nt][1] - mu_lo);
        s[i][nt][2] = exp2f(s[i][nt][2] - mu_hi);
        s[i][nt][3] = exp2f(s[i][nt][3] - mu_hi);
        sum_lo += s[i][nt][0] + s[i][nt][1];
        sum_hi += s[i][nt][2] + s[i][nt][3];
      }
      l_lo[i] = l_lo[i] * a_lo + sum_lo;
      l_hi[i] = l_hi[i] * a_hi + sum_hi;
#pragma unroll
      for (int dt = 0; dt < HD / 8; ++dt) {
        o[i][dt][0] *= a_lo;
        o[i][dt][1] *= a_lo;
        o[i][dt][2] *= a_hi;
        o[i][dt][3] *= a_hi;
      }
    }

#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        a[i][0] = pack2<T>(s[i][2 * kk][0], s[i][2 * kk][1]);
        a[i][1] = pack2<T>(s[i][2 * kk][2], s[i][2 * kk][3]);
        a[i][2] = pack2<T>(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
        a[i][3] = pack2<T>(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, V + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dp * 16 +
                                 (lane >> 4) * 8);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          Mma<T>::run(o[i][2 * dp], a[i], b[0], b[1]);
          Mma<T>::run(o[i][2 * dp + 1], a[i], b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < MT; ++i) {
    float ll = l_lo[i], lh = l_hi[i];
    ll += __shfl_xor_sync(kFull, ll, 1);
    ll += __shfl_xor_sync(kFull, ll, 2);
    lh += __shfl_xor_sync(kFull, lh, 1);
    lh += __shfl_xor_sync(kFull, lh, 2);
    const float inv_lo = ll > 0.f ? 1.f / ll : 0.f;
    const float inv_hi = lh > 0.f ? 1.f / lh : 0.f;
    const int row_lo = q0 + r_lo[i], row_hi = row_lo + 8;
#pragma unroll
    for (int dt = 0; dt < HD / 8; ++dt) {
      const int col = h * HD + dt * 8 + 2 * t;
      if (row_lo < n)
        *reinterpret_cast<uint32_t*>(out + int64_t(row_lo) * q_ld + col) =
            pack2<T>(o[i][dt][0] * inv_lo, o[i][dt][1] * inv_lo);
      if (row_hi < n)
        *reinterpret_cast<uint32_t*>(out + int64_t(row_hi) * q_ld + col) =
            pack2<T>(o[i][dt][2] * inv_hi, o[i][dt][3] * inv_hi);
    }
  }
}

// ---------------------------------------------------------------------------
// Decode on CUDA cores (LMDREF_CUDA_ATTN=warp; the tensor-core kernel below is
// the default): every warp is its own split of the KV length and serves the
// kv head's whole query group, so each key and value is read once per step.
// A lane scores one key per pass (its whole row in flight, 16 bytes per
// load), the warp keeps an online softmax per query head, then it adds the 32
// weighted value rows with each lane owning HD/32 dimensions.

constexpr int kGroupMax = 8;   // query heads per kv head
constexpr int kDecWarps = 4;

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
  // The position comes from a host copy that precedes the whole step, so it
  // may be read before grid_wait().
  const int L = state[0] + 1;
  int chunk = (L + wsplits - 1) / wsplits;
  chunk = max(32, (chunk + 31) / 32 * 32);
  const int w0 = ws * chunk, w1 = min(L, w0 + chunk);
  const int h0 = kvh * group;
  const T* kb = kc + int64_t(kvh) * cap * HD;
  const T* vb = vc + int64_t(kvh) * cap * HD + (lane < PVL ? lane * DPL : 0);

  // One tile: 32 keys, a whole key row per lane, and for each of the 32
  // values this lane's DPL dims; K and V are requested together.
  uint4 kr[HD / 8];
  RawV vr[32];
  auto load_tile = [&](int base) {
    const int key = base + lane;
    const int nv = min(32, w1 - base);
    const uint4* krow = reinterpret_cast<const uint4*>(kb + int64_t(key < w1 ? key : base) * HD);
#pragma unroll
    for (int c = 0; c < HD / 8; ++c) kr[c] = __ldcs(krow + c);
#pragma unroll
    for (int j = 0; j < 32; ++j)
      vr[j] = j < nv ? __ldcs(reinterpret_cast<const RawV*>(vb + int64_t(base + j) * HD)) : RawV();
  };
  // The first tile holds only positions cached by earlier steps (the step
  // before this kernel writes position L - 1): fetch it while that kernel ends.
  const bool early = w0 < w1 && w0 + 32 <= L - 1;
  if (early) load_tile(w0);
  grid_wait();
  grid_release();
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

  for (int base = w0; base < w1; base += 32) {
    if (!early || base != w0) load_tile(base);
    const bool ok = base + lane < w1;
    const int nv = min(32, w1 - base);
    // Scores: each 8-dim chunk of the key is converted once and used by
    // every query head of the group.
    float sc[kGroupMax];
#pragma unroll
    for (int gi = 0; gi < kGroupMax; ++gi) sc[gi] = 0.f;
#pragma unroll
    for (int c = 0; c < HD / 8; ++c) {
      float kf[8];
      const typename Types<T>::T2* p2 = reinterpret_cast<const typename Types<T>::T2*>(&kr[c]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        kf[2 * e] = to_f(p2[e].x);
        kf[2 * e + 1] = to_f(p2[e].y);
      }
#pragma unroll
      for (int gi = 0; gi < kGroupMax; ++gi) {
        if (gi < group) {
          const float4 qa = *reinterpret_cast<const float4*>(&q_s[gi][c * 8]);
          const float4 qb = *reinterpret_cast<const float4*>(&q_s[gi][c * 8 + 4]);
          float acc = sc[gi];
          acc = fmaf(qa.x, kf[0], acc);
          acc = fmaf(qa.y, kf[1], acc);
          acc = fmaf(qa.z, kf[2], acc);
          acc = fmaf(qa.w, kf[3], acc);
          acc = fmaf(qb.x, kf[4], acc);
          acc = fmaf(qb.y, kf[5], acc);
          acc = fmaf(qb.z, kf[6], acc);
          acc = fmaf(qb.w, kf[7], acc);
          sc[gi] = acc;
        }
      }
    }
#pragma unroll
    for (int gi = 0; gi < kGroupMax; ++gi) {
      if (gi < group) {
        const float sv = ok ? sc[gi] : -INFINITY;
        float mx = sv;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
        const float m_new = fmaxf(m[gi], mx);
        const float mu = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m[gi] - mu);
        const float p = exp2f(sv - mu);
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
// Decode on tensor cores: the query heads of one kv head (its GQA group,
// zero-padded to 16 rows) are the rows of an m16 tile, so S = Q·Kᵀ and
// O = P·V are the prefill kernel's products with the group in place of 16
// query positions. One block per (part, kv head) streams its keys in tiles of
// 64 through shared memory (cp.async, double-buffered: whole rows, so every
// load is coalesced); warp w scores keys [16w, 16w + 16) of each tile with
// its own online softmax; the four warps merge in shared memory and write one
// partial (o, max, sum) per query head for decode_combine_kernel.
constexpr int kDecTile = 64;

template <int HD> __host__ __device__ constexpr int decode_mma_smem_bytes() {
  return (16 + 4 * kDecTile) * smem_ld<HD>() * 2;
}

template <typename T, int HD>
__global__ void __launch_bounds__(128)
    decode_mma_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                      const T* __restrict__ vc, int cap, const int32_t* __restrict__ state,
                      int group, float scale_log2, int parts, float* __restrict__ part_o,
                      float* __restrict__ part_ml) {
  constexpr int LD = smem_ld<HD>();
  constexpr int CH = HD / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // 16 rows
  T* sK = sQ + 16 * LD;                // two buffers of kDecTile rows
  T* sV = sK + 2 * kDecTile * LD;      // two buffers of kDecTile rows
  __shared__ float s_m[4][16], s_l[4][16];

  const int kvh = blockIdx.y, part = blockIdx.x, h0 = kvh * group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  // The position comes from a host copy that precedes the whole step, so it
  // may be read before grid_wait().
  const int L = state[0] + 1;
  const int per = ((L + kDecTile - 1) / kDecTile + parts - 1) / parts;  // tiles per part
  const int k0 = part * per * kDecTile, k1 = min(L, k0 + per * kDecTile);
  const int n_tiles = k0 < k1 ? (k1 - k0 + kDecTile - 1) / kDecTile : 0;
  const T* kbase = kc + int64_t(kvh) * cap * HD;
  const T* vbase = vc + int64_t(kvh) * cap * HD;
  auto load_kv = [&](int kv0, int buf) {
    load_kv_tile<T, HD, kDecTile>(sK + buf * kDecTile * LD, sV + buf * kDecTile * LD, kbase,
                                  vbase, kv0, k1, tid);
  };
  // A first tile of positions cached by earlier steps (this step's key, at
  // L - 1, comes from the kernel before) is requested while that kernel ends.
  const bool early = n_tiles > 0 && k0 + kDecTile <= L - 1;
  if (early) load_kv(k0, 0);
  grid_wait();
  grid_release();
  if (n_tiles > 0 && !early) load_kv(k0, 0);
  for (int c = tid; c < 16 * CH; c += 128) {
    const int r = c / CH, cc = c % CH;
    const bool ok = r < group;
    cp_async16(sQ + r * LD + cc * 8, q + int64_t(h0 + (ok ? r : 0)) * HD + cc * 8, ok);
  }
  cp_async_commit();

  uint32_t qf[HD / 16][4];
  float o[HD / 8][4];
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) load_kv(k0 + (j + 1) * kDecTile, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < HD / 16; ++ks) {
        const int col = ks * 16 + 2 * t;
        qf[ks][0] = *reinterpret_cast<const uint32_t*>(sQ + g * LD + col);
        qf[ks][1] = *reinterpret_cast<const uint32_t*>(sQ + (g + 8) * LD + col);
        qf[ks][2] = *reinterpret_cast<const uint32_t*>(sQ + g * LD + col + 8);
        qf[ks][3] = *reinterpret_cast<const uint32_t*>(sQ + (g + 8) * LD + col + 8);
      }
    }
    const T* K = sK + (buf * kDecTile + warp * 16) * LD;
    const T* V = sV + (buf * kDecTile + warp * 16) * LD;
    float s[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      uint32_t b[4];
      ldmatrix_x4(b, K + ((lane & 7) + (lane >> 4) * 8) * LD + ks * 16 + ((lane >> 3) & 1) * 8);
      Mma<T>::run(s[0], qf[ks], b[0], b[1]);
      Mma<T>::run(s[1], qf[ks], b[2], b[3]);
    }
    const int key0 = k0 + j * kDecTile + warp * 16;
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + 2 * t + (e & 1);
        s[nt][e] = key < k1 ? s[nt][e] * scale_log2 : -INFINITY;
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
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - mu_lo);
      s[nt][1] = exp2f(s[nt][1] - mu_lo);
      s[nt][2] = exp2f(s[nt][2] - mu_hi);
      s[nt][3] = exp2f(s[nt][3] - mu_hi);
      sum_lo += s[nt][0] + s[nt][1];
      sum_hi += s[nt][2] + s[nt][3];
    }
    l_lo = l_lo * a_lo + sum_lo;
    l_hi = l_hi * a_hi + sum_hi;
    uint32_t a[4];
    a[0] = pack2<T>(s[0][0], s[0][1]);
    a[1] = pack2<T>(s[0][2], s[0][3]);
    a[2] = pack2<T>(s[1][0], s[1][1]);
    a[3] = pack2<T>(s[1][2], s[1][3]);
#pragma unroll
    for (int dp = 0; dp < HD / 16; ++dp) {
      o[2 * dp][0] *= a_lo;
      o[2 * dp][1] *= a_lo;
      o[2 * dp][2] *= a_hi;
      o[2 * dp][3] *= a_hi;
      o[2 * dp + 1][0] *= a_lo;
      o[2 * dp + 1][1] *= a_lo;
      o[2 * dp + 1][2] *= a_hi;
      o[2 * dp + 1][3] *= a_hi;
      uint32_t b[4];
      ldmatrix_x4_trans(b, V + ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + dp * 16 + (lane >> 4) * 8);
      Mma<T>::run(o[2 * dp], a, b[0], b[1]);
      Mma<T>::run(o[2 * dp + 1], a, b[2], b[3]);
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  // Merge the four warps: each row's sum over the four lanes that share it,
  // then (max, sum, o) of every warp through shared memory (the K/V buffers).
  l_lo += __shfl_xor_sync(kFull, l_lo, 1);
  l_lo += __shfl_xor_sync(kFull, l_lo, 2);
  l_hi += __shfl_xor_sync(kFull, l_hi, 1);
  l_hi += __shfl_xor_sync(kFull, l_hi, 2);
  float* s_o = reinterpret_cast<float*>(sK);  // [4][16][HD]
  __syncthreads();
  if (t == 0) {
    s_m[warp][g] = m_lo, s_m[warp][g + 8] = m_hi;
    s_l[warp][g] = l_lo, s_l[warp][g + 8] = l_hi;
  }
#pragma unroll
  for (int dt = 0; dt < HD / 8; ++dt) {
    float* lo = s_o + (warp * 16 + g) * HD + dt * 8 + 2 * t;
    float* hi = lo + 8 * HD;
    lo[0] = o[dt][0], lo[1] = o[dt][1];
    hi[0] = o[dt][2], hi[1] = o[dt][3];
  }
  __syncthreads();
  for (int i = tid; i < group * HD; i += 128) {
    const int r = i / HD, d = i % HD;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; ++w)
      if (s_l[w][r] > 0.f) M = fmaxf(M, s_m[w][r]);
    float num = 0.f, den = 0.f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      if (s_l[w][r] > 0.f) {
        const float f = exp2f(s_m[w][r] - M);
        num += s_o[(w * 16 + r) * HD + d] * f;
        den += s_l[w][r] * f;
      }
    }
    const int64_t row = int64_t(h0 + r) * parts + part;
    part_o[row * HD + d] = num;
    if (d == 0) {
      part_ml[row * 2 + 0] = M;
      part_ml[row * 2 + 1] = den;
    }
  }
}

constexpr int kCombineWarps = 8;

template <typename T>
__global__ void __launch_bounds__(kCombineWarps * 32)
    decode_combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                          int splits, int hd, T* __restrict__ out) {
  grid_wait();
  grid_release();
  __shared__ float s_m[kCombineWarps], s_l[kCombineWarps], s_o[kCombineWarps][32];
  const int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int d = blockIdx.y * 32 + lane;
  const float* ml = part_ml + int64_t(h) * splits * 2;
  const float* po = part_o + int64_t(h) * splits * hd + (d < hd ? d : 0);
  // One pass: each warp merges its splits online (rescaling when a larger
  // maximum appears), then warp 0 merges the warps. Splits without keys
  // (l = 0) carry nothing.
  float m = -INFINITY, l = 0.f, acc = 0.f;
#pragma unroll 4
  for (int sp = warp; sp < splits; sp += kCombineWarps) {
    const float ms = ml[2 * sp], ls = ml[2 * sp + 1], os = po[int64_t(sp) * hd];
    if (ls > 0.f) {
      const float mn = fmaxf(m, ms);
      const float a = exp2f(m - mn), b = exp2f(ms - mn);
      l = l * a + ls * b;
      acc = acc * a + os * b;
      m = mn;
    }
  }
  if (lane == 0) s_m[warp] = m, s_l[warp] = l;
  s_o[warp][lane] = acc;
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kCombineWarps; ++w)
    if (s_l[w] > 0.f) M = fmaxf(M, s_m[w]);
  float den = 0.f, num = 0.f;
#pragma unroll
  for (int w = 0; w < kCombineWarps; ++w) {
    if (s_l[w] > 0.f) {
      const float f = exp2f(s_m[w] - M);
      den += s_l[w] * f;
      num += s_o[w][lane] * f;
    }
  }
  if (d < hd) out[int64_t(h) * hd + d] = from_f<T>(den > 0.f ? num / den : 0.f);
}

template <typename T, int HD, int MT>
void prefill_tiles(const T* q, const T* kc, const T* vc, int cap, const int32_t* state, int n,
                   int qh, int kvh, T* out, const Launch& l) {
  constexpr int bytes = prefill_smem_bytes<HD, MT>();
  auto kernel = flash_prefill_kernel<T, HD, MT>;
  CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const float scale_log2 = float(1.0 / std::sqrt(double(HD))) * kLog2e;
  const dim3 grid = dim3((n + 64 * MT - 1) / (64 * MT), qh);
  launch(l, kernel, grid, 128, bytes, q, kc, vc, cap, state, n, qh, qh / kvh, scale_log2, out);
}

template <typename T, int HD>
void prefill_hd(const T* q, const T* kc, const T* vc, int cap, const int32_t* state, int n,
                int qh, int kvh, T* out, const Launch& l) {
  // 128-row blocks for long prompts with 128-dim heads (LMDREF_CUDA_PREFILL=64
  // keeps 64-row blocks): a 64-row block reads each K/V fragment for one
  // product only. Short prompts keep 64 rows so the grid fills the GPU.
  static const bool rows64 = [] {
    const char* v = std::getenv("LMDREF_CUDA_PREFILL");
    return v && std::string(v) == "64";
  }();
  if constexpr (HD == 128) {
    if (!rows64 && n >= 1024)
      return prefill_tiles<T, HD, 2>(q, kc, vc, cap, state, n, qh, kvh, out, l);
  }
  prefill_tiles<T, HD, 1>(q, kc, vc, cap, state, n, qh, kvh, out, l);
}

template <typename T, int HD>
void decode_hd(const T* q, const T* kc, const T* vc, int cap, const int32_t* state, int qh,
               int kvh, int splits, float* part_o, float* part_ml, T* out, const Launch& l) {
  const float scale_log2 = float(1.0 / std::sqrt(double(HD))) * kLog2e;
  // Default: tensor cores, one partial per block of four warps.
  // LMDREF_CUDA_ATTN=warp: one split per warp on CUDA cores (the previous
  // default).
  static const std::string form = [] {
    const char* v = std::getenv("LMDREF_CUDA_ATTN");
    return std::string(v ? v : "");
  }();
  int parts = splits;
  if (form == "warp") {
    const dim3 grid = dim3(splits / kDecWarps, kvh);
    launch(l, decode_warp_kernel<T, HD>, grid, kDecWarps * 32, 0, q, kc, vc, cap, state,
           qh / kvh, scale_log2, splits, part_o, part_ml);
  } else {
    parts = splits / 4;
    constexpr int bytes = decode_mma_smem_bytes<HD>();
    auto kernel = decode_mma_kernel<T, HD>;
    CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    launch(l, kernel, dim3(parts, kvh), 128, bytes, q, kc, vc, cap, state, qh / kvh, scale_log2,
           parts, part_o, part_ml);
  }
  const dim3 cgrid = dim3(qh, (HD + 31) / 32);
  launch(l, decode_combine_kernel<T>, cgrid, kCombineWarps * 32, 0, part_o, part_ml, parts, HD,
         out);
}

}  // namespace

bool attention_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

template <typename T>
void launch_prefill_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                              const int32_t* state, int n, int q_heads, int kv_heads, int head_dim,
                              T* out, const Launch& l) {
  switch (head_dim) {
    case 16: return prefill_hd<T, 16>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, l);
    case 32: return prefill_hd<T, 32>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, l);
    case 64: return prefill_hd<T, 64>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, l);
    case 128: return prefill_hd<T, 128>(q, k_cache, v_cache, cap, state, n, q_heads, kv_heads, out, l);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

template <typename T>
void launch_decode_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                             const int32_t* state, int q_heads, int kv_heads, int head_dim,
                             int splits, float* part_o, float* part_ml, T* out, const Launch& l) {
  if (q_heads / kv_heads > kGroupMax)
    throw Error(LMD_ERR_UNSUPPORTED, "decode attention: more than 8 query heads per kv head");
  switch (head_dim) {
    case 16: return decode_hd<T, 16>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, l);
    case 32: return decode_hd<T, 32>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, l);
    case 64: return decode_hd<T, 64>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, l);
    case 128: return decode_hd<T, 128>(q, k_cache, v_cache, cap, state, q_heads, kv_heads, splits, part_o, part_ml, out, l);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

template void launch_prefill_attention<__half>(const __half*, const __half*, const __half*, int,
                                               const int32_t*, int, int, int, int, __half*,
                                               const Launch&);
template void launch_prefill_attention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, int, const int32_t*,
                                                      int, int, int, int, __nv_bfloat16*,
                                                      const Launch&);
template void launch_decode_attention<__half>(const __half*, const __half*, const __half*, int,
                                              const int32_t*, int, int, int, int, float*, float*,
                                              __half*, const Launch&);
template void launch_decode_attention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                     const __nv_bfloat16*, int, const int32_t*,
                                                     int, int, int, int, float*, float*,
                                                     __nv_bfloat16*, const Launch&);

}  // namespace lmdcu
