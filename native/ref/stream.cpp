#include "stream.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>

#include "clock.h"
#include "engine.h"
#include "errors.h"

namespace lmdref {

namespace {

const char* finish_word(int32_t f) {
  switch (f) {
    case LMD_FINISH_EOS: return "eos";
    case LMD_FINISH_STOP: return "stop";
    case LMD_FINISH_LENGTH: return "length";
    case LMD_FINISH_LIMIT: return "limit";
    case LMD_FINISH_CANCELLED: return "cancelled";
    case LMD_FINISH_TIMEOUT: return "timeout";
    case LMD_FINISH_ERROR: return "error";
    default: return "running";
  }
}

}  // namespace

Stream::Stream(std::shared_ptr<Engine> engine, GenerationSpec spec, int64_t t_submit)
    : engine_(std::move(engine)), t_submit_(t_submit), n_watch_(spec.watch.size()) {
  link_ = std::make_shared<SequenceLink>(std::move(spec), this);
}

Stream::~Stream() {
  cancel();
  link_->wait_released();
  engine_->stream_closed();
}

void Stream::cancel() {
  link_->cancel.store(true);
  engine_->poke();
}

void Stream::on_token(int32_t id, uint32_t index, int64_t t_ns, float logprob, const float* watch) {
  lmd_token t;
  t.id = id;
  t.index = index;
  t.t_ns = t_ns;
  t.logprob = logprob;
  t.bundle = 1;
  {
    std::lock_guard<std::mutex> lk(m_);
    tokens_.push_back(t);
    watch_.insert(watch_.end(), watch, watch + n_watch_);
    ++produced_;
    if (t_first_ < 0) t_first_ = t_ns;
    t_last_ = t_ns;
  }
  cv_.notify_all();
}

void Stream::on_end(const SequenceEnd& e) {
  const GenerationSpec& g = link_->spec;
  lmd_result r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.finish_reason = e.decision.finish;
  r.raw_status = e.decision.finish;
  r.prompt_tokens = static_cast<uint32_t>(g.prompt.size());
  r.cached_prompt_tokens = 0;
  r.max_new_requested = g.max_new_requested;
  r.max_new_effective = g.max_new_effective;
  r.stop_token = e.decision.stop_token;
  r.stop_sequence = e.decision.stop_sequence;
  r.t_submit_ns = t_submit_;
  r.device_prefill_ns = e.device_prefill_ns;
  r.device_decode_ns = e.device_decode_ns;
  r.engine_first_ns = -1;
  r.engine_last_ns = -1;
  r.ignore_eos_applied = g.ignore_eos ? 1 : 0;
  r.n_stop_ids = static_cast<uint32_t>(std::min<size_t>(e.single_stop_ids.size(), LMD_MAX_IDS));
  std::copy_n(e.single_stop_ids.begin(), r.n_stop_ids, r.stop_ids);
  std::snprintf(r.raw_status_text, sizeof r.raw_status_text, "%s", finish_word(e.decision.finish));
  std::snprintf(r.limit_source, sizeof r.limit_source, "%s", g.limit_source.c_str());
  std::snprintf(r.detail, sizeof r.detail, "%s", e.detail.c_str());
  r.t_scheduled_ns = e.t_scheduled_ns;
  r.mean_batch = e.mean_batch > 0 ? float(e.mean_batch) : std::numeric_limits<float>::quiet_NaN();
  r.max_batch = e.max_batch;
  {
    std::lock_guard<std::mutex> lk(m_);
    r.output_tokens = produced_;
    r.t_first_ns = t_first_;
    r.t_last_ns = t_last_;
    r.t_done_ns = now_ns();
    result_ = r;
    finished_ = true;
  }
  cv_.notify_all();
}

void Stream::poll(lmd_token* tokens, float* watch_logprobs, uint32_t cap, int64_t timeout_ns,
                  lmd_poll* out) {
  if (cap > 0 && !tokens) invalid("poll: tokens is NULL but cap > 0");
  std::unique_lock<std::mutex> lk(m_);
  if (timeout_ns > 0 && tokens_.empty() && !finished_) {
    // Capped (about 115 days) so that adding it to now() cannot overflow.
    constexpr int64_t kMaxWait = 10000000000000000LL;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::nanoseconds(std::min(timeout_ns, kMaxWait));
    cv_.wait_until(lk, deadline, [&] { return !tokens_.empty() || finished_; });
  }
  const size_t n = std::min<size_t>(cap, tokens_.size());
  for (size_t i = 0; i < n; ++i) tokens[i] = tokens_[i];
  if (watch_logprobs && n_watch_) std::copy_n(watch_.begin(), n * n_watch_, watch_logprobs);
  tokens_.erase(tokens_.begin(), tokens_.begin() + n);
  watch_.erase(watch_.begin(), watch_.begin() + n * n_watch_);
  out->n = static_cast<uint32_t>(n);
  out->done = finished_ && tokens_.empty();
  if (out->done) done_reported_ = true;
}

void Stream::result(lmd_result* out) {
  std::lock_guard<std::mutex> lk(m_);
  if (!done_reported_) fail(LMD_ERR_STATE, "result: poll() has not reported done yet");
  *out = result_;
}

}  // namespace lmdref
