// When a generation ends, decided after each token in a fixed order:
//   1. cancel requested                               -> CANCELLED
//   2. only once count >= min_new_tokens:
//        token in the EOS set and not ignore_eos      -> EOS
//        a stop sequence matches the generated tail   -> STOP
//   3. count == requested max_new_tokens              -> LENGTH
//      count == effective max (an engine clamp)       -> LIMIT
// ignore_eos removes only the EOS ids: stop sequences, even single ids that
// are also EOS ids, stay active. Real engines behave this way, and the early-
// stop forensics need the ref engine to reproduce it.
#pragma once

#include <cstdint>
#include <vector>

namespace lmdref {

struct StopDecision {
  int32_t finish = 0;        // LMD_FINISH_*, 0 while running
  int32_t stop_token = -1;
  int32_t stop_sequence = -1;
};

class StopRules {
 public:
  StopRules(std::vector<int32_t> eos_ids, bool ignore_eos, uint32_t min_new,
            std::vector<std::vector<int32_t>> stop_sequences, uint32_t max_requested,
            uint32_t max_effective);

  // generated holds every output token so far, the newest last.
  StopDecision check(const std::vector<int32_t>& generated, bool cancelled) const;

  // Single ids that can end this generation: active EOS ids and every
  // one-token stop sequence, without duplicates.
  std::vector<int32_t> single_stop_ids() const;

 private:
  std::vector<int32_t> eos_;
  bool ignore_eos_;
  uint32_t min_new_;
  std::vector<std::vector<int32_t>> stops_;
  uint32_t max_requested_, max_effective_;
};

}  // namespace lmdref
