#include "next_token.h"

#include <limits>

namespace lmdref {

NextToken::NextToken(Backend& backend, const RequestSpec& spec, uint32_t vocab)
    : backend_(backend),
      spec_(spec),
      vocab_(vocab),
      on_device_(spec.temperature <= 0 && backend.chooses_greedy()),
      sampler_(sampling_params(spec), vocab),
      logits_(on_device_ ? 0 : vocab),
      watch_logits_(on_device_ ? spec.watch_ids.size() : 0) {}

bool NextToken::forward(const int32_t* tokens, int n, int start_pos,
                        const std::atomic<bool>* cancel) {
  if (on_device_)
    return backend_.forward_greedy(tokens, n, start_pos, spec_.watch_ids.data(),
                                   static_cast<int>(spec_.watch_ids.size()), watch_logits_.data(),
                                   &choice_, cancel);
  return backend_.forward(tokens, n, start_pos, 1, logits_.data(), cancel);
}

void NextToken::bind(SeqStep& step) {
  if (on_device_) {
    step.choice = &choice_;
    step.watch = spec_.watch_ids.data();
    step.n_watch = static_cast<int>(spec_.watch_ids.size());
    step.watch_logits = watch_logits_.data();
  } else {
    step.logits = logits_.data();
  }
}

int32_t NextToken::choose() { return on_device_ ? choice_.id : sampler_.pick(logits_.data()); }

float NextToken::report(int32_t id, float* watch) const {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const size_t n_watch = spec_.watch_ids.size();
  if (!spec_.want_logprobs) {
    for (size_t w = 0; w < n_watch; ++w) watch[w] = nan;
    return nan;
  }
  const double lse = on_device_ ? choice_.log_sum_exp : log_sum_exp(logits_.data(), vocab_);
  for (size_t w = 0; w < n_watch; ++w) {
    const float v = on_device_ ? watch_logits_[w] : logits_[spec_.watch_ids[w]];
    watch[w] = static_cast<float>(double(v) - lse);
  }
  const double chosen = on_device_ ? double(choice_.logit) : double(logits_[id]);
  return static_cast<float>(chosen - lse);
}

}  // namespace lmdref
