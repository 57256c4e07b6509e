// Rotary position embedding as Hugging Face computes it (rotate-half form):
// inv_freq[i] = 1 / theta^(2i/d) and angle = pos * inv_freq[i], both rounded
// to fp32 as torch does, so long positions match its phase.
#pragma once

#include <cstdint>
#include <vector>

namespace lmdref {

class Rope {
 public:
  Rope() = default;
  Rope(int head_dim, double theta);

  // cos and sin of the head_dim/2 angles at one position.
  void angles(int64_t pos, float* cos_out, float* sin_out) const;

  // Rotates n_heads consecutive vectors of head_dim in place.
  void rotate(float* x, int n_heads, const float* cos_v, const float* sin_v) const;

  int half() const { return static_cast<int>(inv_freq_.size()); }

 private:
  std::vector<float> inv_freq_;
};

}  // namespace lmdref
