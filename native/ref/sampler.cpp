#include "sampler.h"

#include <algorithm>
#include <cmath>

#include "random_weights.h"

namespace lmdref {

SamplingParams sampling_params(const RequestSpec& req) {
  SamplingParams p;
  p.temperature = req.temperature;
  p.top_k = req.top_k;
  p.top_p = req.top_p;
  p.seed = req.seed;
  return p;
}

int32_t argmax(const float* v, uint32_t n) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<int32_t>(best);
}

double log_sum_exp(const float* v, uint32_t n) {
  float mx = v[0];
  for (uint32_t i = 1; i < n; ++i) mx = std::max(mx, v[i]);
  double sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += std::exp(double(v[i]) - double(mx));
  return double(mx) + std::log(sum);
}

Sampler::Sampler(const SamplingParams& p, uint32_t vocab) : p_(p), vocab_(vocab), state_(p.seed) {}

double Sampler::uniform() {
  const uint64_t r = splitmix64(state_);
  state_ += 0x9E3779B97F4A7C15ULL;
  return double(r >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::pick(const float* logits) {
  if (p_.temperature <= 0) return argmax(logits, vocab_);

  // Higher logit first, lower id on ties: a total order, so any partial sort
  // of the candidates agrees on the prefix.
  auto before = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const float mx = logits[argmax(logits, vocab_)];
  const double inv_t = 1.0 / double(p_.temperature);
  auto weight = [&](int32_t id) { return std::exp((double(logits[id]) - double(mx)) * inv_t); };

  // Candidates: every id, or the top_k best in order.
  const bool all = p_.top_k == 0 || p_.top_k >= vocab_;
  ids_.resize(vocab_);
  for (uint32_t i = 0; i < vocab_; ++i) ids_[i] = static_cast<int32_t>(i);
  if (!all) {
    std::nth_element(ids_.begin(), ids_.begin() + p_.top_k, ids_.end(), before);
    ids_.resize(p_.top_k);
    std::sort(ids_.begin(), ids_.end(), before);
  }

  if (p_.top_p < 1.0f) {
    double total = 0;
    for (int32_t id : ids_) total += weight(id);
    const double want = double(p_.top_p) * total;
    // The nucleus is a prefix of the sorted order: sort a growing prefix until
    // it holds top_p of the mass (the full vocabulary rarely needs sorting).
    size_t keep = 0;
    for (size_t len = all ? std::min<size_t>(64, ids_.size()) : ids_.size();;
         len = std::min(ids_.size(), len * 8)) {
      if (all) std::partial_sort(ids_.begin(), ids_.begin() + len, ids_.end(), before);
      double mass = 0;
      keep = 0;
      while (keep < len && mass < want) mass += weight(ids_[keep++]);
      if (mass >= want || len == ids_.size()) break;
    }
    ids_.resize(std::max<size_t>(keep, 1));
  }

  weights_.resize(ids_.size());
  double total = 0;
  for (size_t i = 0; i < ids_.size(); ++i) total += (weights_[i] = weight(ids_[i]));
  const double u = uniform() * total;
  double acc = 0;
  for (size_t i = 0; i < ids_.size(); ++i) {
    acc += weights_[i];
    if (u < acc) return ids_[i];
  }
  return ids_.back();
}

}  // namespace lmdref
