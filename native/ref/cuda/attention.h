// Causal attention over the KV cache ([kv_heads][cap][head_dim] per layer):
// the prefill kernels (attention_prefill.cu) and the decode kernels
// (attention_decode.cu), which share attention_tiles.cuh.
#pragma once

#include "common.h"

namespace lmdcu {

// Whether head_dim has compiled kernels (16, 32, 64, 128).
bool attention_supports(int head_dim);

// n query rows at positions state[0] + i against keys [0, state[0] + n) of
// one layer; the sequence's position p is cache index state[2] + p.
template <typename T>
struct AttentionArgs {
  const T* q = nullptr;  // [n][q_heads * head_dim]
  const T* k_cache = nullptr;
  const T* v_cache = nullptr;
  int cap = 0;                      // positions per kv head in the cache
  const int32_t* state = nullptr;   // device memory: [0] first row's position, [2] cache base
  int n = 0;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  T* out = nullptr;  // [n][q_heads * head_dim]
  int host_start = -1;  // state[0] as the host knows it (prefill), -1 unknown
  int host_base = 0;    // state[2] as the host knows it (the Hopper prefill)
};

// Prefill: tiled on tensor cores with an online softmax, so the score matrix
// never exists in memory (mma.sync: sm_80 and newer, any head_dim).
template <typename T>
void launch_prefill_attention(const AttentionArgs<T>& a, const Launch& l);

// Whether the Hopper prefill kernel can run here: built for sm_90a, an
// sm_90 GPU current, head_dim 128, the driver's tensor-map encoder found.
bool prefill_sm90_ready(int head_dim);

// The Hopper kernel (attention_prefill_sm90.cu): wgmma, TMA, warp
// specialisation. Needs prefill_sm90_ready(head_dim), a.host_start and
// a.host_base.
template <typename T>
void launch_prefill_attention_sm90(const AttentionArgs<T>& a, const Launch& l);

// Scratch of the split-KV decode: partial outputs and (max, sum) per query
// head and part.
struct DecodeSplits {
  int parts = 1;             // parts of the KV length per kv head
  float* part_o = nullptr;   // q_heads * parts * head_dim floats
  float* part_ml = nullptr;  // q_heads * parts * 2 floats
  // kv_heads zeroed counters: the attention kernel's last block per kv head
  // combines the parts itself; nullptr: a combine kernel runs after it.
  unsigned* counters = nullptr;
};

// Parts for a GPU with `sms` multiprocessors: about two blocks per SM over
// all kv heads.
int decode_parts(int sms, int kv_heads);

// Decode: one query row (a.n = 1), the KV length split into s.parts parts per
// kv head, then combined. The grid does not depend on the position, so the
// launch can live in a CUDA graph.
template <typename T>
void launch_decode_attention(const AttentionArgs<T>& a, const DecodeSplits& s, const Launch& l);

// Decode of several sequences at once (a batched step): one query row each,
// sequence b's row rows[b] of a.q and a.out, its state (position, token,
// cache base) at states + 4b. a.n and a.state are not used.
struct DecodeBatch {
  int count = 0;
  const int32_t* states = nullptr;  // device memory, 4 per sequence
  const int32_t* rows = nullptr;    // device memory
};

// Parts for `count` sequences at once: about two blocks per SM in all.
int decode_batch_parts(int sms, int kv_heads, int count);

// s.part_o and s.part_ml hold count × q_heads × s.parts partials; s.counters,
// where set, count × kv_heads zeroed counters.
template <typename T>
void launch_decode_attention_batch(const AttentionArgs<T>& a, const DecodeBatch& b,
                                   const DecodeSplits& s, const Launch& l);

}  // namespace lmdcu
