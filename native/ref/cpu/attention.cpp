#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/kv_cache.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"
#include "cpu/vec_exp.h"

namespace lmdref {

namespace {

constexpr int kRows = 16;        // query rows sharing one pass over the keys

struct Block {
  const float* q[kRows];
  float* out[kRows];
  int64_t keys[kRows];  // row r attends keys [0, keys[r]); non-decreasing in r
  int rows = 0;
};

LMDREF_INLINE f32x16 load16(const float* p) {
  f32x16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

LMDREF_INLINE void store(float* dst, const f32x16& v, int64_t n) {
  if (n >= 16) {
    __builtin_memcpy(dst, &v, sizeof v);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = v[i];
  }
}

// s[r][j] = q_r · k_j for one 16-key block at a time, two rows sharing each
// key load. Keys past a row's limit are computed (blocks are whole, so the
// loads stay inside the cache) but never read.
LMDREF_INLINE void scores(const Block& b, const float* kt, int hd, float* s, int64_t width) {
  for (int64_t j0 = 0; j0 < width; j0 += 16) {
    const float* blk = kt + j0 * hd;
    const int64_t n = width - j0;
    for (int r = 0; r < b.rows; r += 2) {
      const bool pair = r + 1 < b.rows;
      if (b.keys[pair ? r + 1 : r] <= j0) continue;
      const float* q0 = b.q[r];
      const float* q1 = pair ? b.q[r + 1] : q0;
      f32x16 a0 = {}, a1 = {};
      for (int d = 0; d < hd; ++d) {
        const f32x16 k = load16(blk + d * 16);
        a0 += q0[d] * k;
        a1 += q1[d] * k;
      }
      store(s + r * width + j0, a0, n);
      if (pair) store(s + (r + 1) * width + j0, a1, n);
    }
  }
}

// out_r = sum_j p[r][j] v_j with head_dim = 16 * NV held in registers, two
// rows sharing each value load.
template <int NV>
LMDREF_INLINE void weighted_values(const Block& b, const float* v, const float* s, int64_t width) {
  constexpr int hd = 16 * NV;
  for (int r = 0; r < b.rows; r += 2) {
    const bool pair = r + 1 < b.rows;
    const float* p0 = s + r * width;
    const float* p1 = pair ? p0 + width : p0;
    f32x16 a0[NV] = {}, a1[NV] = {};
    const int64_t both = b.keys[r], last = b.keys[pair ? r + 1 : r];
    for (int64_t j = 0; j < both; ++j) {
      for (int c = 0; c < NV; ++c) {
        const f32x16 x = load16(v + j * hd + 16 * c);
        a0[c] += p0[j] * x;
        a1[c] += p1[j] * x;
      }
    }
    for (int64_t j = both; j < last; ++j)
      for (int c = 0; c < NV; ++c) a1[c] += p1[j] * load16(v + j * hd + 16 * c);
    for (int c = 0; c < NV; ++c) {
      __builtin_memcpy(b.out[r] + 16 * c, &a0[c], sizeof a0[c]);
      if (pair) __builtin_memcpy(b.out[r + 1] + 16 * c, &a1[c], sizeof a1[c]);
    }
  }
}

// Any other head_dim: one row at a time through memory.
LMDREF_INLINE void weighted_values_any(const Block& b, const float* v, int hd, const float* s,
                                       int64_t width) {
  for (int r = 0; r < b.rows; ++r) {
    float* o = b.out[r];
    std::fill(o, o + hd, 0.0f);
    for (int64_t j = 0; j < b.keys[r]; ++j) {
      const float p = s[r * width + j];
      const float* vr = v + j * hd;
      for (int d = 0; d < hd; ++d) o[d] += p * vr[d];
    }
  }
}

// In place: sr[j] = softmax(scale * sr)[j] over n scores. Sums run in float
// lanes over 256 values, then in double.
LMDREF_INLINE void softmax(float* sr, int64_t n, float scale) {
  const int64_t n16 = n / 16 * 16;
  f32x16 vmax = f32x16{} - INFINITY;
  for (int64_t j = 0; j < n16; j += 16) {
    const f32x16 x = load16(sr + j) * scale;
    __builtin_memcpy(sr + j, &x, sizeof x);
    vmax = x > vmax ? x : vmax;
  }
  float mx = -INFINITY;
  for (int i = 0; i < 16; ++i) mx = std::max(mx, vmax[i]);
  for (int64_t j = n16; j < n; ++j) {
    sr[j] *= scale;
    mx = std::max(mx, sr[j]);
  }
  double sum = 0;
  f32x16 acc = {};
  for (int64_t j = 0; j < n16; j += 16) {
    const f32x16 e = exp16(load16(sr + j) - mx);
    __builtin_memcpy(sr + j, &e, sizeof e);
    acc += e;
    if ((j & 255) == 240 || j + 16 == n16) {
      for (int i = 0; i < 16; ++i) sum += acc[i];
      acc = f32x16{};
    }
  }
  if (n16 < n) {
    f32x16 t = {};
    for (int64_t j = n16; j < n; ++j) t[j - n16] = sr[j] - mx;
    const f32x16 e = exp16(t);
    for (int64_t j = n16; j < n; ++j) {
      sr[j] = e[j - n16];
      sum += sr[j];
    }
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) sr[j] *= inv;
}

// Scores, softmax and the weighted sum of values for one block of rows that
// share a KV head. s is scratch of rows × keys[rows-1] floats.
LMDREF_MULTIVERSION
void attend(const Block& b, const float* kt, const float* v, int hd, float scale, float* s) {
  const int64_t width = b.keys[b.rows - 1];
  scores(b, kt, hd, s, width);
  for (int r = 0; r < b.rows; ++r) softmax(s + r * width, b.keys[r], scale);
  switch (hd) {
    case 16: weighted_values<1>(b, v, s, width); break;
    case 32: weighted_values<2>(b, v, s, width); break;
    case 64: weighted_values<4>(b, v, s, width); break;
    case 128: weighted_values<8>(b, v, s, width); break;
    default: weighted_values_any(b, v, hd, s, width); break;
  }
}

}  // namespace

void attention(Parallel& par, const AttentionShape& s, int layer, const AttentionRows* seqs,
               int n_seqs, int64_t ldq, int64_t ldo) {
  const int group = s.heads / s.kv_heads;
  const int hd = s.head_dim;
  // Tasks are (sequence, kv head, block of rows); first[i] is sequence i's first task.
  std::vector<int64_t> first(size_t(n_seqs) + 1, 0);
  std::vector<int64_t> blocks(static_cast<size_t>(n_seqs), 0);
  for (int i = 0; i < n_seqs; ++i) {
    const int64_t rows_per_head = int64_t(seqs[i].n) * group;  // (position, head in group), position-major
    blocks[i] = (rows_per_head + kRows - 1) / kRows;
    first[i + 1] = first[i] + s.kv_heads * blocks[i];
  }
  // Scores and weighted values: 2·hd multiply-adds per (query head, key).
  double work = 0;
  for (int i = 0; i < n_seqs; ++i)
    work += 2.0 * hd * s.heads * double(seqs[i].n) * (double(seqs[i].start_pos) + (seqs[i].n + 1) / 2.0);
  par.for_range(first[n_seqs], work, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    int i = 0;
    for (int64_t t = begin; t < end; ++t) {
      while (t >= first[i + 1]) ++i;
      const AttentionRows& sq = seqs[i];
      const int64_t local = t - first[i];
      const int g = static_cast<int>(local / blocks[i]);
      const int64_t rows_per_head = int64_t(sq.n) * group;
      const int64_t r0 = (local % blocks[i]) * kRows;
      Block b;
      b.rows = static_cast<int>(std::min<int64_t>(kRows, rows_per_head - r0));
      for (int r = 0; r < b.rows; ++r) {
        const int64_t row = (r0 + r) / group;
        const int h = g * group + static_cast<int>((r0 + r) % group);
        b.q[r] = sq.q + row * ldq + int64_t(h) * hd;
        b.out[r] = sq.out + row * ldo + int64_t(h) * hd;
        b.keys[r] = sq.start_pos + row + 1;
      }
      scratch.resize(size_t(b.rows) * b.keys[b.rows - 1]);
      attend(b, sq.cache->keys_t(layer, g), sq.cache->values(layer, g), hd, s.scale, scratch.data());
    }
  });
}

void attention(Parallel& par, const AttentionShape& s, const KvCache& cache, int layer,
               const float* q, int64_t ldq, int n, int64_t start_pos, float* out, int64_t ldo) {
  AttentionRows one;
  one.cache = &cache;
  one.q = q;
  one.out = out;
  one.n = n;
  one.start_pos = start_pos;
  attention(par, s, layer, &one, 1, ldq, ldo);
}

}  // namespace lmdref
