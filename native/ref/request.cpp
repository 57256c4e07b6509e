#include "request.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "errors.h"

namespace lmdref {

namespace {

// Older callers may pass a shorter struct: missing fields take their defaults.
lmd_request read_request(const lmd_request* in) {
  lmd_request r;
  std::memset(&r, 0, sizeof r);
  r.top_p = 1.0f;
  const size_t need = offsetof(lmd_request, max_new_tokens) + sizeof(r.max_new_tokens);
  if (in->struct_size < need)
    invalid("request struct_size " + std::to_string(in->struct_size) + " is too small (need at least " +
            std::to_string(need) + ")");
  std::memcpy(&r, in, std::min<size_t>(in->struct_size, sizeof r));
  return r;
}

void check_id(int32_t id, uint32_t vocab, const std::string& what) {
  if (id < 0 || uint32_t(id) >= vocab)
    invalid(what + " " + std::to_string(id) + " is outside the vocabulary [0, " +
            std::to_string(vocab) + ")");
}

}  // namespace

GenerationSpec make_generation_spec(const lmd_request* in, const EngineLimits& lim) {
  if (!in) invalid("request is NULL");
  const lmd_request r = read_request(in);
  GenerationSpec g;

  if (r.n_prompt < 1) invalid("n_prompt must be at least 1");
  if (!r.prompt) invalid("prompt is NULL");
  g.prompt.assign(r.prompt, r.prompt + r.n_prompt);
  for (uint32_t i = 0; i < r.n_prompt; ++i)
    check_id(g.prompt[i], lim.vocab, "prompt[" + std::to_string(i) + "] token id");

  if (r.max_new_tokens < 1) invalid("max_new_tokens must be at least 1");
  if (r.min_new_tokens > r.max_new_tokens)
    invalid("min_new_tokens (" + std::to_string(r.min_new_tokens) + ") exceeds max_new_tokens (" +
            std::to_string(r.max_new_tokens) + ")");
  g.max_new_requested = r.max_new_tokens;
  g.min_new = r.min_new_tokens;
  g.ignore_eos = r.ignore_eos != 0;

  if (r.n_stop > 0) {
    if (!r.stop_ends || !r.stop_tokens) invalid("n_stop > 0 but stop_tokens or stop_ends is NULL");
    uint32_t begin = 0;
    for (uint32_t s = 0; s < r.n_stop; ++s) {
      const uint32_t end = r.stop_ends[s];
      if (end <= begin)
        invalid("stop_ends must increase strictly (stop sequence " + std::to_string(s) +
                " is empty or ends before the previous one)");
      std::vector<int32_t> seq(r.stop_tokens + begin, r.stop_tokens + end);
      for (int32_t id : seq) check_id(id, lim.vocab, "stop sequence " + std::to_string(s) + " token id");
      g.stops.push_back(std::move(seq));
      begin = end;
    }
  }

  if (r.n_watch > kMaxWatch)
    invalid("n_watch " + std::to_string(r.n_watch) + " exceeds " + std::to_string(kMaxWatch));
  if (r.n_watch > 0) {
    if (!r.watch_ids) invalid("n_watch > 0 but watch_ids is NULL");
    g.watch.assign(r.watch_ids, r.watch_ids + r.n_watch);
    for (int32_t id : g.watch) check_id(id, lim.vocab, "watch id");
  }

  if (!std::isfinite(r.temperature) || r.temperature < 0)
    invalid("temperature must be a finite number >= 0 (0: greedy)");
  if (!std::isfinite(r.top_p) || r.top_p < 0 || r.top_p > 1)
    invalid("top_p must be in (0, 1] (1: no nucleus limit)");
  if (r.temperature > 0 && r.top_p == 0) invalid("top_p must be in (0, 1] when sampling");
  g.sampling.temperature = r.temperature;
  g.sampling.top_k = r.top_k;
  g.sampling.top_p = r.top_p;
  g.sampling.seed = r.seed;
  g.want_logprobs = r.want_logprobs != 0;

  g.max_new_effective = g.max_new_requested;
  g.limit_source = "max_new_tokens=" + std::to_string(g.max_new_requested) + " (request)";
  if (lim.max_seq_len > 0) {
    if (r.n_prompt >= lim.max_seq_len)
      invalid("prompt of " + std::to_string(r.n_prompt) + " tokens does not fit max_seq_len " +
              std::to_string(lim.max_seq_len));
    const uint32_t room = lim.max_seq_len - r.n_prompt;
    if (room < g.max_new_requested) {
      g.max_new_effective = room;
      g.limit_source = "max_seq_len=" + std::to_string(lim.max_seq_len) +
                       (lim.max_seq_len_from_config ? " (config override)"
                                                    : " (model max_position_embeddings)");
    }
  }
  return g;
}

}  // namespace lmdref
