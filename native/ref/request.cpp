#include "request.h"

#include <string>

namespace lmdref {

namespace {

void check_id(int32_t id, uint32_t vocab, const std::string& what) {
  if (id < 0 || uint32_t(id) >= vocab)
    invalid(what + " " + std::to_string(id) + " is outside the vocabulary [0, " +
            std::to_string(vocab) + ")");
}

}  // namespace

Clamp fit_request(const RequestSpec& r, const EngineLimits& lim) {
  for (size_t i = 0; i < r.prompt.size(); ++i)
    check_id(r.prompt[i], lim.vocab, "prompt[" + std::to_string(i) + "] token id");
  for (size_t s = 0; s < r.stops.size(); ++s)
    for (int32_t id : r.stops[s])
      check_id(id, lim.vocab, "stop sequence " + std::to_string(s) + " token id");
  for (int32_t id : r.watch_ids) check_id(id, lim.vocab, "watch id");

  Clamp c = lmdrive::shim::seq_len_clamp(
      uint32_t(r.prompt.size()), r.max_new_tokens, lim.max_seq_len,
      lim.max_seq_len_from_config ? "config override" : "model max_position_embeddings");
  if (c.limit_source.empty())
    c.limit_source = "max_new_tokens=" + std::to_string(r.max_new_tokens) + " (request)";
  return c;
}

}  // namespace lmdref
