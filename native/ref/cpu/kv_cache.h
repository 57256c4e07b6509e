// The CPU backend's KV cache. Keys are stored transposed in blocks of 16
// positions ([pos/16][head_dim][16]) so that attention scores vectorise over
// positions while every block stays contiguous; values stay [pos][head_dim]
// so that the weighted sum vectorises over the head dimension. Capacity grows
// on demand (by half again, up to the engine's limit), never up front.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/float_buffer.h"

namespace lmdref {

class KvCache {
 public:
  void configure(int layers, int kv_heads, int head_dim, int64_t limit);

  // Makes room for n positions, keeping the first `keep` ones.
  void reserve(int64_t n, int64_t keep);

  int64_t capacity() const { return cap_; }
  static constexpr int kBlock = 16;

  // Element (pos, d) of a head's keys is at (pos / 16) * head_dim * 16 + d * 16 + pos % 16.
  float* keys_t(int layer, int head) { return k_[layer].data() + int64_t(head) * head_dim_ * cap_; }
  float* values(int layer, int head) { return v_[layer].data() + int64_t(head) * cap_ * head_dim_; }
  const float* keys_t(int layer, int head) const {
    return k_[layer].data() + int64_t(head) * head_dim_ * cap_;
  }
  const float* values(int layer, int head) const {
    return v_[layer].data() + int64_t(head) * cap_ * head_dim_;
  }

 private:
  int kv_heads_ = 0, head_dim_ = 0;
  int64_t limit_ = 0, cap_ = 0;
  std::vector<FloatBuffer> k_, v_;
};

}  // namespace lmdref
