// Causal grouped-query attention over the KV cache, streaming: per block of
// query rows it holds one row of scores per query (never an n × n matrix).
#pragma once

#include <cstdint>

namespace lmdref {

class Parallel;
class KvCache;

struct AttentionShape {
  int heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.0f;  // 1/sqrt(head_dim)
};

// One sequence's query rows: q holds n rows (stride ldq) of heads × head_dim,
// already rotated, for positions start_pos … start_pos + n − 1; its cache
// already holds keys and values up to the last of them. n rows (stride ldo)
// go to out.
struct AttentionRows {
  const KvCache* cache = nullptr;
  const float* q = nullptr;
  float* out = nullptr;
  int n = 0;
  int64_t start_pos = 0;
};

// Attention of several sequences at once, each against its own cache, the
// work of all of them split over the threads. A row's result does not
// depend on the other rows or sequences of the call.
void attention(Parallel& par, const AttentionShape& s, int layer, const AttentionRows* seqs,
               int n_seqs, int64_t ldq, int64_t ldo);

// One sequence.
void attention(Parallel& par, const AttentionShape& s, const KvCache& cache, int layer,
               const float* q, int64_t ldq, int n, int64_t start_pos, float* out, int64_t ldo);

}  // namespace lmdref
