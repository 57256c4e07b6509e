// Causal attention over the KV cache ([kv_heads][cap][head_dim] per layer).
#pragma once

#include "common.h"

namespace lmdcu {

// Whether head_dim has compiled kernels (16, 32, 64, 128).
bool attention_supports(int head_dim);

// n query rows at positions state[0] + i (q: [n][q_heads*hd]) against keys
// [0, state[0] + n): tiled on tensor cores with an online softmax, so the
// score matrix never exists in memory. out: [n][q_heads*hd].
template <typename T>
void launch_prefill_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                              const int32_t* state, int n, int q_heads, int kv_heads, int head_dim,
                              T* out, const Launch& l);

// One query row at position state[0] (keys [0, state[0] + 1)), split over the
// KV length into `splits` parts per kv head (a multiple of 4: one per warp),
// then combined. part_o holds q_heads*splits*hd floats, part_ml
// q_heads*splits*2. The grid does not depend on the position, so the launch
// can live in a CUDA graph.
template <typename T>
void launch_decode_attention(const T* q, const T* k_cache, const T* v_cache, int cap,
                             const int32_t* state, int q_heads, int kv_heads, int head_dim,
                             int splits, float* part_o, float* part_ml, T* out, const Launch& l);

}  // namespace lmdcu
