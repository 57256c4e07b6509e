// How each next token is chosen, and what the stream reports with it. Either
// the backend's logits row comes to the host and the Sampler picks there, or,
// for greedy decoding on a backend that chooses where its logits live (the
// CUDA backend), the backend hands back its choice and the few numbers the
// stream needs: the logits row never crosses to the host.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "backend.h"
#include "kit.h"
#include "sampler.h"

namespace lmdref {

class NextToken {
 public:
  NextToken(Backend& backend, const RequestSpec& spec, uint32_t vocab);

  bool on_device() const { return on_device_; }

  // Runs the model over tokens at positions [start_pos, start_pos + n) and
  // keeps what choose() needs of the last position. False when cancelled.
  bool forward(const int32_t* tokens, int n, int start_pos, const std::atomic<bool>* cancel);

  // Points a batched step's outputs for this sequence (Backend::step) at
  // what choose() reads, instead of forward().
  void bind(SeqStep& step);

  // The token after the last forward.
  int32_t choose();

  // Its logprob, and the watched ids' logprobs into watch (spec.watch_ids.size()
  // floats); NaN unless the spec wants logprobs. Call after choose().
  float report(int32_t id, float* watch) const;

 private:
  Backend& backend_;
  const RequestSpec& spec_;
  uint32_t vocab_;
  bool on_device_;
  Sampler sampler_;
  std::vector<float> logits_;        // host path: the last position's row
  std::vector<float> watch_logits_;  // device path: the watched ids' logits
  GreedyChoice choice_;              // device path
};

}  // namespace lmdref
