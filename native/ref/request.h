// Checks an lmd_request and copies it into an owned GenerationSpec, with the
// effective token budget after the engine's max_seq_len clamp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lmdrive.h"
#include "sampler.h"

namespace lmdref {

struct GenerationSpec {
  std::vector<int32_t> prompt;
  uint32_t max_new_requested = 0;
  uint32_t max_new_effective = 0;
  uint32_t min_new = 0;
  bool ignore_eos = false;
  std::vector<std::vector<int32_t>> stops;
  std::vector<int32_t> watch;
  SamplingParams sampling;
  bool want_logprobs = false;
  std::string limit_source;  // which limit set max_new_effective
};

struct EngineLimits {
  uint32_t vocab = 0;
  uint32_t max_seq_len = 0;          // 0: none
  bool max_seq_len_from_config = false;
};

constexpr uint32_t kMaxWatch = 4096;

// Throws Error(LMD_ERR_INVALID) with a message naming the bad field.
GenerationSpec make_generation_spec(const lmd_request* req, const EngineLimits& lim);

}  // namespace lmdref
