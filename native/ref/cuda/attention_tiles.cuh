// Device code shared by the prefill and decode attention kernels: the
// tensor-core operations (mma.sync m16n8k16 with fp32 accumulators, ldmatrix,
// cp.async), the K/V tile loader, the online-softmax update of one tile of
// scores, and the merge of partial results (max, sum, output).
//
// Fragment layout (mma.sync m16n8k16, and wgmma's per-warp 16 rows alike):
// lane (g, t) = (lane / 4, lane % 4) holds rows g and g + 8 of a 16-row tile;
// for each n8 block of the accumulator, elements [0..1] are row g, columns
// 2t and 2t + 1, and [2..3] row g + 8, the same columns.
#pragma once

#include <cmath>

#include "common.h"

namespace lmdcu {
namespace attn {

constexpr unsigned kFull = 0xffffffffu;
constexpr float kLog2e = 1.4426950408889634f;

// log2(e) / sqrt(head_dim): scores are kept in base 2 (exp2f).
inline float scale_log2(int head_dim) { return float(1.0 / std::sqrt(double(head_dim))) * kLog2e; }

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

// Shared-memory row stride of a tile of HD-element rows: 8 elements of
// padding keep ldmatrix's eight row reads on distinct banks.
template <int HD> __host__ __device__ constexpr int smem_ld() { return HD + 8; }

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

// The running softmax state of the two rows (g, g + 8) a lane holds.
struct RowState {
  float m_lo = -INFINITY, m_hi = -INFINITY;  // running maxima (log2 units)
  float l_lo = 0.f, l_hi = 0.f;              // this lane's share of the running sums
};

// One tile's online-softmax update. s holds NT n8 blocks of scores, already
// scaled by scale_log2 and set to -inf where masked. Afterwards s holds
// exp2(s - max), st the new maxima and sums, and (a_lo, a_hi) the factors
// that rescale the output accumulators of rows g and g + 8. Rows whose
// scores are all -inf so far keep max -inf and contribute nothing.
template <int NT>
__device__ __forceinline__ void online_softmax(float (&s)[NT][4], RowState& st, float& a_lo,
                                               float& a_hi) {
  float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mx_lo = fmaxf(mx_lo, fmaxf(s[nt][0], s[nt][1]));
    mx_hi = fmaxf(mx_hi, fmaxf(s[nt][2], s[nt][3]));
  }
  mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 1));
  mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, 2));
  mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 1));
  mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, 2));
  const float mn_lo = fmaxf(st.m_lo, mx_lo), mn_hi = fmaxf(st.m_hi, mx_hi);
  const float mu_lo = mn_lo == -INFINITY ? 0.f : mn_lo;
  const float mu_hi = mn_hi == -INFINITY ? 0.f : mn_hi;
  a_lo = exp2f(st.m_lo - mu_lo);
  a_hi = exp2f(st.m_hi - mu_hi);
  st.m_lo = mn_lo;
  st.m_hi = mn_hi;
  float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s[nt][0] = exp2f(s[nt][0] - mu_lo);
    s[nt][1] = exp2f(s[nt][1] - mu_lo);
    s[nt][2] = exp2f(s[nt][2] - mu_hi);
    s[nt][3] = exp2f(s[nt][3] - mu_hi);
    sum_lo += s[nt][0] + s[nt][1];
    sum_hi += s[nt][2] + s[nt][3];
  }
  st.l_lo = st.l_lo * a_lo + sum_lo;
  st.l_hi = st.l_hi * a_hi + sum_hi;
}

// Rescales ND n8 blocks of output accumulators by (a_lo, a_hi).
template <int ND>
__device__ __forceinline__ void rescale(float (&o)[ND][4], float a_lo, float a_hi) {
#pragma unroll
  for (int d = 0; d < ND; ++d) {
    o[d][0] *= a_lo;
    o[d][1] *= a_lo;
    o[d][2] *= a_hi;
    o[d][3] *= a_hi;
  }
}

// The probabilities of keys [16kk, 16kk + 16) as the A operand of P·V: the
// accumulator layout of S is the A fragment layout, two n8 blocks a k16 step.
template <typename T, int NT>
__device__ __forceinline__ void p_fragment(const float (&s)[NT][4], int kk, uint32_t (&a)[4]) {
  a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
  a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
  a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

// The full row sums of (g, g + 8): each lane holds a quarter of a row.
__device__ __forceinline__ void row_sums(RowState& st) {
  st.l_lo += __shfl_xor_sync(kFull, st.l_lo, 1);
  st.l_lo += __shfl_xor_sync(kFull, st.l_lo, 2);
  st.l_hi += __shfl_xor_sync(kFull, st.l_hi, 1);
  st.l_hi += __shfl_xor_sync(kFull, st.l_hi, 2);
}

// Merges partial results (max m, sum l, output o) of one query row: add()
// every part in any order, then o / l is the row's output. Parts without
// keys (l = 0) carry nothing. The arithmetic is spelled out (no contraction
// left to the compiler) so that every kernel that merges gets the same bits.
struct Merge {
  float m = -INFINITY, l = 0.f, o = 0.f;
  __device__ __forceinline__ void add(float ms, float ls, float os) {
    if (!(ls > 0.f)) return;
    const float mn = fmaxf(m, ms);
    const float a = exp2f(m - mn), b = exp2f(ms - mn);
    l = __fmaf_rn(ls, b, __fmul_rn(l, a));
    o = __fmaf_rn(os, b, __fmul_rn(o, a));
    m = mn;
  }
};

// The split-KV combine of one output element (query head h, dimension d):
// kCombineWays running merges over parts w, w + kCombineWays, … (the ways a
// combine kernel's warps take), then one merge of the ways. Shared by the
// separate combine kernel (a warp per way) and the attention kernel's last
// block (one thread per element, every way in turn): the same bits.
constexpr int kCombineWays = 8;

__device__ __forceinline__ Merge combine_way(const float* ml, const float* po, int parts,
                                             int hd, int way) {
  Merge mg;
#pragma unroll 4
  for (int sp = way; sp < parts; sp += kCombineWays)
    mg.add(__ldcg(ml + 2 * sp), __ldcg(ml + 2 * sp + 1), __ldcg(po + int64_t(sp) * hd));
  return mg;
}

__device__ __forceinline__ float combine_ways(const float (&m)[kCombineWays],
                                              const float (&l)[kCombineWays],
                                              const float (&o)[kCombineWays]) {
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kCombineWays; ++w)
    if (l[w] > 0.f) M = fmaxf(M, m[w]);
  float den = 0.f, num = 0.f;
#pragma unroll
  for (int w = 0; w < kCombineWays; ++w) {
    if (l[w] > 0.f) {
      const float f = exp2f(m[w] - M);
      den = __fmaf_rn(l[w], f, den);
      num = __fmaf_rn(o[w], f, num);
    }
  }
  return den > 0.f ? __fdiv_rn(num, den) : 0.f;
}

}  // namespace attn
}  // namespace lmdcu
