// Causal prefill attention on tensor cores (mma.sync, sm_80 and newer).
#include "attention.h"
#include "attention_tiles.cuh"

namespace lmdcu {

namespace {

using namespace attn;

// 64·MT query rows per block (MT m16 tiles per warp, 4 warps), 64 keys per
// step, K and V tiles double-buffered in shared memory. Scores and
// probabilities stay in registers: the accumulator layout of S = Q·Kᵀ is
// reused as the A operand of P·V. With MT = 2 every K and V fragment read
// from shared memory feeds two tensor-core products instead of one (shared
// memory bandwidth is what bounds MT = 1 on Hopper); the Q fragments are then
// re-read from shared memory each step, as the registers hold two tiles of
// scores and outputs.
constexpr int kBc = 64;

template <int HD, int MT> __host__ __device__ constexpr int prefill_smem_bytes() {
  return (64 * MT + 4 * kBc) * smem_ld<HD>() * 2;
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
  // The sequence's positions start at cache index state[2].
  const T* kbase = kc + (int64_t(kvh) * cap + state[2]) * HD;
  const T* vbase = vc + (int64_t(kvh) * cap + state[2]) * HD;

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
  RowState st[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) o[i][d][0] = o[i][d][1] = o[i][d][2] = o[i][d][3] = 0.f;

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
      }
      float a_lo, a_hi;
      online_softmax<kBc / 8>(s[i], st[i], a_lo, a_hi);
      rescale<HD / 8>(o[i], a_lo, a_hi);
    }

#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) p_fragment<T, kBc / 8>(s[i], kk, a[i]);
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
    row_sums(st[i]);
    const float inv_lo = st[i].l_lo > 0.f ? 1.f / st[i].l_lo : 0.f;
    const float inv_hi = st[i].l_hi > 0.f ? 1.f / st[i].l_hi : 0.f;
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

template <typename T, int HD, int MT>
void prefill_tiles(const AttentionArgs<T>& a, const Launch& l) {
  constexpr int bytes = prefill_smem_bytes<HD, MT>();
  auto kernel = flash_prefill_kernel<T, HD, MT>;
  CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const dim3 grid = dim3(unsigned((a.n + 64 * MT - 1) / (64 * MT)), unsigned(a.q_heads));
  launch(l, kernel, grid, 128, bytes, a.q, a.k_cache, a.v_cache, a.cap, a.state, a.n, a.q_heads,
         a.q_heads / a.kv_heads, scale_log2(HD), a.out);
}

// 128-row blocks for long prompts with 128-dim heads: a 64-row block reads
// each K/V fragment for one product only. Short prompts keep 64 rows so the
// grid fills the GPU.
template <typename T, int HD>
void prefill_hd(const AttentionArgs<T>& a, const Launch& l) {
  if constexpr (HD == 128) {
    if (a.n >= 1024) return prefill_tiles<T, HD, 2>(a, l);
  }
  prefill_tiles<T, HD, 1>(a, l);
}

}  // namespace

template <typename T>
void launch_prefill_attention(const AttentionArgs<T>& a, const Launch& l) {
  switch (a.head_dim) {
    case 16: return prefill_hd<T, 16>(a, l);
    case 32: return prefill_hd<T, 32>(a, l);
    case 64: return prefill_hd<T, 64>(a, l);
    case 128: return prefill_hd<T, 128>(a, l);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

template void launch_prefill_attention<__half>(const AttentionArgs<__half>&, const Launch&);
template void launch_prefill_attention<__nv_bfloat16>(const AttentionArgs<__nv_bfloat16>&,
                                                      const Launch&);

}  // namespace lmdcu
