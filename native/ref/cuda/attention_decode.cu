// Decode attention: one query row per head against the KV cache, on tensor
// cores (mma.sync, sm_80 and newer), split over the KV length.
#include <algorithm>

#include "attention.h"
#include "attention_tiles.cuh"

namespace lmdcu {

namespace {

using namespace attn;

constexpr int kGroupMax = 8;  // query heads per kv head

// The query heads of one kv head (its GQA group, zero-padded to 16 rows) are
// the rows of an m16 tile, so S = Q·Kᵀ and O = P·V are the prefill kernel's
// products with the group in place of 16 query positions. One block per
// (part, kv head) streams its keys in tiles of 64 through shared memory
// (cp.async, double-buffered: whole rows, so every load is coalesced); warp w
// scores keys [16w, 16w + 16) of each tile with its own online softmax; the
// four warps merge in shared memory and write one partial (o, max, sum) per
// query head. MERGED: the last block of a kv head to finish (a counter per kv
// head, reset by that block) combines the parts of the head's query group
// and writes the output, as decode_combine_kernel would, bit for bit;
// otherwise decode_combine_kernel does, launched after.
constexpr int kDecTile = 64;

template <int HD> __host__ __device__ constexpr int decode_smem_bytes() {
  return (16 + 4 * kDecTile) * smem_ld<HD>() * 2;
}

// Sequence blockIdx.z: its state at state + 4z (or state itself when
// states_stride is 0), its query row rows[z] (0 without rows), its partials
// after those of the sequences before it, its counters (MERGED) after theirs.
template <typename T, int HD, bool MERGED>
__global__ void __launch_bounds__(128)
    decode_kernel(const T* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                  int cap, const int32_t* __restrict__ state, int states_stride,
                  const int32_t* __restrict__ rows, int q_ld, int group, float scale_log2,
                  int parts, float* __restrict__ part_o, float* __restrict__ part_ml,
                  unsigned* __restrict__ counters, T* __restrict__ out) {
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
  const int seq = blockIdx.z;
  state += seq * states_stride;
  {
    const int64_t row_off = int64_t(rows ? rows[seq] : 0) * q_ld;
    q += row_off;
    if constexpr (MERGED) out += row_off;
  }
  {
    const int heads = gridDim.y * group;
    part_o += int64_t(seq) * heads * parts * HD;
    part_ml += int64_t(seq) * heads * parts * 2;
    if constexpr (MERGED) counters += seq * gridDim.y;
  }
  // The position comes from a host copy that precedes the whole step, so it
  // may be read before grid_wait().
  const int L = state[0] + 1;
  const int per = ((L + kDecTile - 1) / kDecTile + parts - 1) / parts;  // tiles per part
  const int k0 = part * per * kDecTile, k1 = min(L, k0 + per * kDecTile);
  const int n_tiles = k0 < k1 ? (k1 - k0 + kDecTile - 1) / kDecTile : 0;
  const T* kbase = kc + (int64_t(kvh) * cap + state[2]) * HD;
  const T* vbase = vc + (int64_t(kvh) * cap + state[2]) * HD;
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
  RowState st;

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
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + 2 * t + (e & 1);
        s[nt][e] = key < k1 ? s[nt][e] * scale_log2 : -INFINITY;
      }
    float a_lo, a_hi;
    online_softmax<2>(s, st, a_lo, a_hi);
    uint32_t a[4];
    p_fragment<T, 2>(s, 0, a);
    rescale<HD / 8>(o, a_lo, a_hi);
#pragma unroll
    for (int dp = 0; dp < HD / 16; ++dp) {
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
  row_sums(st);
  float* s_o = reinterpret_cast<float*>(sK);  // [4][16][HD]
  __syncthreads();
  if (t == 0) {
    s_m[warp][g] = st.m_lo, s_m[warp][g + 8] = st.m_hi;
    s_l[warp][g] = st.l_lo, s_l[warp][g + 8] = st.l_hi;
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
  if constexpr (MERGED) {
    __shared__ bool s_last;
    __threadfence();  // this block's partials, before the count says they are there
    __syncthreads();
    if (tid == 0) s_last = atomicAdd(counters + kvh, 1u) == unsigned(parts - 1);
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    for (int i = tid; i < group * HD; i += 128) {
      const int h = h0 + i / HD, d = i % HD;
      float m[kCombineWays], l[kCombineWays], o[kCombineWays];
#pragma unroll
      for (int w = 0; w < kCombineWays; ++w) {
        const Merge mg = combine_way(part_ml + int64_t(h) * parts * 2,
                                     part_o + int64_t(h) * parts * HD + d, parts, HD, w);
        m[w] = mg.m, l[w] = mg.l, o[w] = mg.o;
      }
      out[int64_t(h) * HD + d] = from_f<T>(combine_ways(m, l, o));
    }
    if (tid == 0) counters[kvh] = 0;  // for the next launch
  }
}

// Combines the parts of each query head: grid (heads, hd/32), one warp per
// way of combine_way (kCombineWays), then warp 0 merges the ways.
template <typename T>
__global__ void __launch_bounds__(kCombineWays * 32)
    decode_combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                          int parts, int hd, const int32_t* __restrict__ rows, int out_ld,
                          T* __restrict__ out) {
  grid_wait();
  grid_release();
  __shared__ float s_m[kCombineWays], s_l[kCombineWays], s_o[kCombineWays][32];
  const int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // Sequence blockIdx.z: its partials, and its row of out.
  const int seq = blockIdx.z, heads = gridDim.x;
  part_o += int64_t(seq) * heads * parts * hd;
  part_ml += int64_t(seq) * heads * parts * 2;
  out += int64_t(rows ? rows[seq] : 0) * out_ld;
  const int d = blockIdx.y * 32 + lane;
  const Merge mg = combine_way(part_ml + int64_t(h) * parts * 2,
                               part_o + int64_t(h) * parts * hd + (d < hd ? d : 0), parts, hd, warp);
  if (lane == 0) s_m[warp] = mg.m, s_l[warp] = mg.l;
  s_o[warp][lane] = mg.o;
  __syncthreads();
  if (warp != 0) return;
  float m[kCombineWays], l[kCombineWays], o[kCombineWays];
#pragma unroll
  for (int w = 0; w < kCombineWays; ++w) m[w] = s_m[w], l[w] = s_l[w], o[w] = s_o[w][lane];
  if (d < hd) out[int64_t(h) * hd + d] = from_f<T>(combine_ways(m, l, o));
}

// One sequence (b.count == 0: a.state, rows 0) or b.count sequences.
template <typename T, int HD, bool MERGED>
void decode_launch(const AttentionArgs<T>& a, const DecodeBatch& b, const DecodeSplits& s,
                   const Launch& l) {
  constexpr int bytes = decode_smem_bytes<HD>();
  auto kernel = decode_kernel<T, HD, MERGED>;
  CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const unsigned seqs = unsigned(b.count > 0 ? b.count : 1);
  launch(l, kernel, dim3(unsigned(s.parts), unsigned(a.kv_heads), seqs), 128, bytes, a.q,
         a.k_cache, a.v_cache, a.cap, b.count > 0 ? b.states : a.state, b.count > 0 ? 4 : 0,
         b.count > 0 ? b.rows : nullptr, a.q_heads * HD, a.q_heads / a.kv_heads, scale_log2(HD),
         s.parts, s.part_o, s.part_ml, s.counters, a.out);
}

template <typename T, int HD>
void decode_hd(const AttentionArgs<T>& a, const DecodeBatch& b, const DecodeSplits& s,
               const Launch& l) {
  if (s.counters) return decode_launch<T, HD, true>(a, b, s, l);
  decode_launch<T, HD, false>(a, b, s, l);
  const unsigned seqs = unsigned(b.count > 0 ? b.count : 1);
  const dim3 cgrid = dim3(unsigned(a.q_heads), unsigned((HD + 31) / 32), seqs);
  launch(l, decode_combine_kernel<T>, cgrid, kCombineWays * 32, 0, s.part_o, s.part_ml, s.parts,
         HD, b.count > 0 ? b.rows : nullptr, a.q_heads * HD, a.out);
}

}  // namespace

bool attention_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

int decode_parts(int sms, int kv_heads) {
  return int(std::min<int64_t>(128, std::max<int64_t>(1, ceil_div(2 * sms, kv_heads))));
}

int decode_batch_parts(int sms, int kv_heads, int count) {
  return int(std::min<int64_t>(128, std::max<int64_t>(1, ceil_div(2 * sms, int64_t(kv_heads) * count))));
}

namespace {

template <typename T>
void decode_any(const AttentionArgs<T>& a, const DecodeBatch& b, const DecodeSplits& s,
                const Launch& l) {
  if (a.q_heads / a.kv_heads > kGroupMax)
    throw Error(LMD_ERR_UNSUPPORTED, "decode attention: more than 8 query heads per kv head");
  switch (a.head_dim) {
    case 16: return decode_hd<T, 16>(a, b, s, l);
    case 32: return decode_hd<T, 32>(a, b, s, l);
    case 64: return decode_hd<T, 64>(a, b, s, l);
    case 128: return decode_hd<T, 128>(a, b, s, l);
    default: throw Error(LMD_ERR_UNSUPPORTED, "attention: unsupported head_dim");
  }
}

}  // namespace

template <typename T>
void launch_decode_attention(const AttentionArgs<T>& a, const DecodeSplits& s, const Launch& l) {
  decode_any<T>(a, DecodeBatch{}, s, l);
}

template <typename T>
void launch_decode_attention_batch(const AttentionArgs<T>& a, const DecodeBatch& b,
                                   const DecodeSplits& s, const Launch& l) {
  if (b.count < 1 || !b.states || !b.rows)
    throw Error(LMD_ERR_INVALID, "decode attention: a batch needs its states and rows");
  decode_any<T>(a, b, s, l);
}

template void launch_decode_attention<__half>(const AttentionArgs<__half>&, const DecodeSplits&,
                                              const Launch&);
template void launch_decode_attention<__nv_bfloat16>(const AttentionArgs<__nv_bfloat16>&,
                                                     const DecodeSplits&, const Launch&);
template void launch_decode_attention_batch<__half>(const AttentionArgs<__half>&, const DecodeBatch&,
                                                    const DecodeSplits&, const Launch&);
template void launch_decode_attention_batch<__nv_bfloat16>(const AttentionArgs<__nv_bfloat16>&,
                                                           const DecodeBatch&, const DecodeSplits&,
                                                           const Launch&);

}  // namespace lmdcu
