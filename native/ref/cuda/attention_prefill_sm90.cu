// Causal prefill attention for Hopper (sm_90a), FlashAttention-3 style: the
// tensor cores' warpgroup instructions (wgmma) fed by the bulk tensor copy
// engine (TMA), with warp specialisation. One block takes 128 query rows of
// one head: warpgroup 0 is the producer (one thread issues TMA copies of the
// Q tile and of K/V tiles of 128 keys into a two-stage ring, with mbarriers
// for "full" and "empty"), warpgroups 1 and 2 are consumers of 64 rows each:
// S = Q·Kᵀ with both operands in shared memory, the online softmax in
// registers (the accumulator layout of a warp's 16 rows is mma.sync's, so
// attention_tiles.cuh's softmax applies), then O += P·V with P from registers
// and V (keys × dims, dims contiguous) read transposed from shared memory.
// Tiles are 128-byte swizzled: TMA writes them so and the wgmma descriptors
// read them so. head_dim 128 only; attention_prefill.cu's mma.sync kernel
// serves the rest, sm_80, and LMDREF_CUDA_PREFILL_ATTN=mma.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <mutex>

#include "attention.h"
#include "attention_tiles.cuh"

namespace lmdcu {

namespace {

using namespace attn;

constexpr int kHd = 128;         // head_dim
constexpr int kBM = 128;         // query rows per block: 64 per consumer warpgroup
[[maybe_unused]] constexpr int kBN = 128;  // keys per tile
constexpr int kHalfBytes = 128 * 128;  // one 64-column half of a 128-row tile (bytes)
constexpr int kTileBytes = 2 * kHalfBytes;
constexpr int kStages = 2;
// Q, then K and V of each stage; +1024 to align the base to 1024 bytes.
constexpr int kSmemBytes = kTileBytes * (1 + 2 * kStages) + 1024;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LMDCU_SM90A 1
#else
#define LMDCU_SM90A 0
#endif

#if LMDCU_SM90A

__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred P1;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra.uni DONE;\nbra.uni WAIT;\nDONE:\n}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}

__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, int c0, int c1,
                                            uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
}
__device__ __forceinline__ void tma_load_3d(void* dst, const CUtensorMap* map, int c0, int c1,
                                            int c2, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
      : "memory");
}

// A shared-memory matrix descriptor of a 128-byte-swizzled tile (rows of
// 128 bytes, 8-row groups 1024 bytes apart): lbo is the byte distance
// between 64-column halves where an operand spans two (the dims of V),
// unused for a K-major operand.
__device__ __forceinline__ uint64_t desc_sw128(const void* p, uint32_t lbo) {
  const uint32_t a = smem_addr(p);
  uint64_t d = uint64_t((a & 0x3FFFF) >> 4);
  d |= uint64_t((lbo >> 4) & 0x3FFF) << 16;
  d |= uint64_t((1024 >> 4) & 0x3FFF) << 32;
  d |= uint64_t(1) << 62;  // 128-byte swizzle
  return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait0() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// Keeps the compiler from moving reads or writes of an accumulator across
// the asynchronous wgmma instructions (they write it when waited for).
__device__ __forceinline__ void fence_regs(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void wgmma_ss_f16(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(scale_d));
}

__device__ __forceinline__ void wgmma_ss_bf16(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(scale_d));
}

__device__ __forceinline__ void wgmma_rs_f16(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

__device__ __forceinline__ void wgmma_rs_bf16(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

template <typename T> struct Wgmma;
template <> struct Wgmma<__half> {
  __device__ __forceinline__ static void ss(float (&d)[64], uint64_t a, uint64_t b, int acc) {
    wgmma_ss_f16(d, a, b, acc);
  }
  __device__ __forceinline__ static void rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
    wgmma_rs_f16(d, a, b);
  }
};
template <> struct Wgmma<__nv_bfloat16> {
  __device__ __forceinline__ static void ss(float (&d)[64], uint64_t a, uint64_t b, int acc) {
    wgmma_ss_bf16(d, a, b, acc);
  }
  __device__ __forceinline__ static void rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
    wgmma_rs_bf16(d, a, b);
  }
};

#endif  // LMDCU_SM90A

// Q: 2-D map over [n][q_heads·128]; K, V: 3-D maps over [kv_heads][L][128]
// of this layer's cache, so that rows from L on read as zeros.
template <typename T>
__global__ void __launch_bounds__(384, 1)
    flash_prefill_sm90_kernel(const __grid_constant__ CUtensorMap qmap,
                              const __grid_constant__ CUtensorMap kmap,
                              const __grid_constant__ CUtensorMap vmap,
                              const int32_t* __restrict__ state, int n, int q_heads, int group,
                              float scale_log2, T* __restrict__ out) {
#if LMDCU_SM90A
  extern __shared__ unsigned char smem_raw[];
  __shared__ __align__(8) uint64_t bars[1 + 2 * kStages];  // q_full, full[2], empty[2]
  uint64_t* q_full = bars;
  uint64_t* full = bars + 1;
  uint64_t* empty = bars + 1 + kStages;
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  unsigned char* sQ = base;
  unsigned char* sK = base + kTileBytes;                     // kStages tiles
  unsigned char* sV = base + kTileBytes * (1 + kStages);     // kStages tiles

  const int tile = gridDim.x - 1 - blockIdx.x;  // the longest rows first
  const int h = blockIdx.y, kvh = h / group;
  const int tid = threadIdx.x, wg = tid / 128;
  if (tid == 0) {
    mbar_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full + s, 1);
      mbar_init(empty + s, 256);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  grid_wait();
  grid_release();
  const int start = state[0];
  const int q0 = tile * kBM;
  const int L = start + n;
  const int kv_end = min(L, start + q0 + kBM);
  const int n_tiles = (kv_end + kBN - 1) / kBN;

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (tid == 0) {
      mbar_expect_tx(q_full, kTileBytes);
      tma_load_2d(sQ, &qmap, h * kHd, q0, q_full);
      tma_load_2d(sQ + kHalfBytes, &qmap, h * kHd + 64, q0, q_full);
      for (int j = 0; j < n_tiles; ++j) {
        const int s = j % kStages;
        if (j >= kStages) mbar_wait(empty + s, ((j / kStages) - 1) & 1);
        mbar_expect_tx(full + s, 2 * kTileBytes);
        unsigned char* k = sK + s * kTileBytes;
        unsigned char* v = sV + s * kTileBytes;
        tma_load_3d(k, &kmap, 0, j * kBN, kvh, full + s);
        tma_load_3d(k + kHalfBytes, &kmap, 64, j * kBN, kvh, full + s);
        tma_load_3d(v, &vmap, 0, j * kBN, kvh, full + s);
        tma_load_3d(v + kHalfBytes, &vmap, 64, j * kBN, kvh, full + s);
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  const int c = wg - 1;  // consumer: rows [64c, 64c + 64) of the block
  const int ct = tid - 128 * wg, warp = ct / 32, lane = ct % 32;
  const int g = lane >> 2, t = lane & 3;
  const int row_lo = 64 * c + 16 * warp + g;  // this lane's rows: row_lo, row_lo + 8
  const int qp_lo = start + q0 + row_lo, qp_hi = qp_lo + 8;

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  RowState st;
  mbar_wait(q_full, 0);

  for (int j = 0; j < n_tiles; ++j) {
    const int s = j % kStages;
    mbar_wait(full + s, (j / kStages) & 1);
    const unsigned char* k = sK + s * kTileBytes;
    const unsigned char* v = sV + s * kTileBytes;

    // S = Q·Kᵀ over the 128 dims: 8 steps of 16, 4 in each 64-column half
    // (a step is 32 bytes further into the swizzled rows).
    float sacc[64];
    fence_regs(sacc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
      const int off = (kk / 4) * kHalfBytes + (kk % 4) * 32;
      Wgmma<T>::ss(sacc, desc_sw128(sQ + off + c * 64 * 128, 16),
                   desc_sw128(k + off, 16), kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    wgmma_wait0();
    fence_regs(sacc);

    float (&sc)[kBN / 8][4] = reinterpret_cast<float (&)[kBN / 8][4]>(sacc);
    const int kv0 = j * kBN;
    const bool need_mask = kv0 + kBN > start + q0 || kv0 + kBN > L;
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = sc[nt][e] * scale_log2;
        if (need_mask) {
          const int col = kv0 + nt * 8 + 2 * t + (e & 1);
          if (col > (e < 2 ? qp_lo : qp_hi) || col >= L) x = -INFINITY;
        }
        sc[nt][e] = x;
      }
    }
    float a_lo, a_hi;
    online_softmax<kBN / 8>(sc, st, a_lo, a_hi);
    float (&oc)[kHd / 8][4] = reinterpret_cast<float (&)[kHd / 8][4]>(o);
    rescale<kHd / 8>(oc, a_lo, a_hi);
    uint32_t pa[kBN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) p_fragment<T, kBN / 8>(sc, kk, pa[kk]);

    // O += P·V over the 128 keys: 8 steps of 16 keys (2048 bytes each); V's
    // two 64-dim halves are kHalfBytes apart.
    fence_regs(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk)
      Wgmma<T>::rs(o, pa[kk], desc_sw128(v + kk * 2048, kHalfBytes));
    wgmma_commit();
    wgmma_wait0();
    fence_regs(o);
    mbar_arrive(empty + s);
  }

  row_sums(st);
  const float inv_lo = st.l_lo > 0.f ? 1.f / st.l_lo : 0.f;
  const float inv_hi = st.l_hi > 0.f ? 1.f / st.l_hi : 0.f;
  const int q_ld = q_heads * kHd;
  const int r_lo = q0 + row_lo, r_hi = r_lo + 8;
  float (&oc)[kHd / 8][4] = reinterpret_cast<float (&)[kHd / 8][4]>(o);
#pragma unroll
  for (int dt = 0; dt < kHd / 8; ++dt) {
    const int col = h * kHd + dt * 8 + 2 * t;
    if (r_lo < n)
      *reinterpret_cast<uint32_t*>(out + int64_t(r_lo) * q_ld + col) =
          pack2<T>(oc[dt][0] * inv_lo, oc[dt][1] * inv_lo);
    if (r_hi < n)
      *reinterpret_cast<uint32_t*>(out + int64_t(r_hi) * q_ld + col) =
          pack2<T>(oc[dt][2] * inv_hi, oc[dt][3] * inv_hi);
  }
#else
  __trap();  // built without sm_90a: never launched (prefill_sm90_ready)
#endif
}

// The driver's tensor-map encoder, reached through the runtime (no link to
// libcuda); nullptr where the driver has none.
PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      p = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

template <typename T> constexpr CUtensorMapDataType map_type();
template <> constexpr CUtensorMapDataType map_type<__half>() { return CU_TENSOR_MAP_DATA_TYPE_FLOAT16; }
template <> constexpr CUtensorMapDataType map_type<__nv_bfloat16>() {
  return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}

// A map of `rank` dims (innermost first) with 128-row boxes of 64 columns,
// 128-byte swizzled; out-of-range rows read as zeros.
template <typename T>
CUtensorMap make_map(const void* base, int rank, const cuuint64_t* dims, const cuuint64_t* strides) {
  CUtensorMap m;
  const cuuint32_t box[3] = {64, 128, 1};
  const cuuint32_t elem[3] = {1, 1, 1};
  const CUresult r = encoder()(&m, map_type<T>(), cuuint32_t(rank), const_cast<void*>(base), dims,
                               strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error(LMD_ERR_ENGINE, "cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
  return m;
}

}  // namespace

bool prefill_sm90_ready(int head_dim) {
#if defined(LMDREF_HAVE_SM90A) && LMDREF_HAVE_SM90A
  if (head_dim != kHd) return false;
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0 && encoder() != nullptr;
#else
  (void)head_dim;
  return false;
#endif
}

template <typename T>
void launch_prefill_attention_sm90(const AttentionArgs<T>& a, const Launch& l) {
  if (a.head_dim != kHd || a.host_start < 0)
    throw Error(LMD_ERR_ENGINE, "Hopper prefill attention: head_dim 128 and a host position only");
  const int L = a.host_start + a.n;
  const cuuint64_t qdims[2] = {cuuint64_t(a.q_heads) * kHd, cuuint64_t(a.n)};
  const cuuint64_t qstrides[1] = {cuuint64_t(a.q_heads) * kHd * sizeof(T)};
  const CUtensorMap qmap = make_map<T>(a.q, 2, qdims, qstrides);
  const cuuint64_t kvdims[3] = {kHd, cuuint64_t(L), cuuint64_t(a.kv_heads)};
  const cuuint64_t kvstrides[2] = {kHd * sizeof(T), cuuint64_t(a.cap) * kHd * sizeof(T)};
  // The maps start at the sequence's first cache index: rows past L read as
  // zeros (and are masked), never another sequence's keys.
  const size_t base = size_t(a.host_base) * kHd;
  const CUtensorMap kmap = make_map<T>(a.k_cache + base, 3, kvdims, kvstrides);
  const CUtensorMap vmap = make_map<T>(a.v_cache + base, 3, kvdims, kvstrides);
  auto kernel = flash_prefill_sm90_kernel<T>;
  CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  const dim3 grid(unsigned((a.n + kBM - 1) / kBM), unsigned(a.q_heads));
  launch(l, kernel, grid, 384, kSmemBytes, qmap, kmap, vmap, a.state, a.n, a.q_heads,
         a.q_heads / a.kv_heads, scale_log2(kHd), a.out);
}

template void launch_prefill_attention_sm90<__half>(const AttentionArgs<__half>&, const Launch&);
template void launch_prefill_attention_sm90<__nv_bfloat16>(const AttentionArgs<__nv_bfloat16>&,
                                                           const Launch&);

}  // namespace lmdcu
