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

// q holds n query rows (stride ldq) of heads × head_dim, already rotated, for
// positions start_pos … start_pos + n − 1; the cache already holds keys and
// values up to the last of them. Writes n rows (stride ldo) to out.
void attention(Parallel& par, const AttentionShape& s, const KvCache& cache, int layer,
               const float* q, int64_t ldq, int n, int64_t start_pos, float* out, int64_t ldo);

}  // namespace lmdref
