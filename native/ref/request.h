// What the reference engine adds to the kit's request checks: every id must
// lie in the model's vocabulary, and the token budget is clamped to
// max_seq_len.
#pragma once

#include <cstdint>

#include "kit.h"

namespace lmdref {

struct EngineLimits {
  uint32_t vocab = 0;
  uint32_t max_seq_len = 0;          // 0: none
  bool max_seq_len_from_config = false;
};

// Checks req against the engine and returns its token budget; limit_source
// names what set it ("max_new_tokens=N (request)" when nothing lowered it).
// Throws Error(LMD_ERR_INVALID) with a message naming the bad field.
Clamp fit_request(const RequestSpec& req, const EngineLimits& lim);

}  // namespace lmdref
