// Token choice from logits: greedy, or seeded sampling with temperature,
// then top-k, then top-p. Same seed and logits give the same token on every
// machine: ties break toward the lower id and the PRNG is SplitMix64.
#pragma once

#include <cstdint>
#include <vector>

#include "kit.h"

namespace lmdref {

struct SamplingParams {
  float temperature = 0;  // 0: greedy
  uint32_t top_k = 0;     // 0: no limit
  float top_p = 1;        // 1: no nucleus limit
  uint64_t seed = 0;
};

// A request's sampling fields.
SamplingParams sampling_params(const RequestSpec& req);

class Sampler {
 public:
  Sampler(const SamplingParams& p, uint32_t vocab);
  int32_t pick(const float* logits);

 private:
  SamplingParams p_;
  uint32_t vocab_;
  uint64_t state_;
  std::vector<int32_t> ids_;
  std::vector<double> weights_;

  double uniform();  // [0, 1), 53 bits
};

// First index of the largest value.
int32_t argmax(const float* v, uint32_t n);

// log(sum(exp(v))), computed stably in double.
double log_sum_exp(const float* v, uint32_t n);

}  // namespace lmdref
