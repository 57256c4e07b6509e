#include "cpu/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace lmdref {

void KvCache::configure(int layers, int kv_heads, int head_dim, int64_t limit) {
  kv_heads_ = kv_heads;
  head_dim_ = head_dim;
  limit_ = limit;
  cap_ = 0;
  k_.clear();
  v_.clear();
  k_.resize(layers);
  v_.resize(layers);
}

void KvCache::reserve(int64_t n, int64_t keep) {
  if (n <= cap_) return;
  int64_t cap = std::max<int64_t>({n, cap_ + cap_ / 2, 256});
  if (limit_ > 0) cap = std::max(n, std::min(cap, limit_));
  cap = (cap + kBlock - 1) / kBlock * kBlock;
  keep = std::min(keep, cap_);
  const int64_t hd = head_dim_;
  for (size_t l = 0; l < k_.size(); ++l) {
    FloatBuffer k, v;
    k.reserve(size_t(kv_heads_) * hd * cap);
    v.reserve(size_t(kv_heads_) * hd * cap);
    const int64_t keep_blocks = (keep + kBlock - 1) / kBlock * kBlock;
    for (int h = 0; h < kv_heads_ && keep > 0; ++h) {
      std::memcpy(k.data() + h * cap * hd, k_[l].data() + h * cap_ * hd,
                  keep_blocks * hd * sizeof(float));
      std::memcpy(v.data() + h * cap * hd, v_[l].data() + h * cap_ * hd, keep * hd * sizeof(float));
    }
    k_[l] = std::move(k);
    v_[l] = std::move(v);
  }
  cap_ = cap;
}

}  // namespace lmdref
