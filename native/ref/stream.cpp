#include "stream.h"

#include <algorithm>
#include <chrono>

#include "engine.h"
#include "errors.h"
#include "generation.h"

namespace lmdref {

Stream::Stream(std::shared_ptr<Engine> engine, GenerationSpec spec, int64_t t_submit)
    : engine_(std::move(engine)), spec_(std::move(spec)), t_submit_(t_submit) {}

Stream::~Stream() {
  cancel();
  join();
}

void Stream::launch() {
  worker_ = std::thread([this] { run_generation(*engine_, *this); });
}

void Stream::join() {
  std::lock_guard<std::mutex> lk(join_m_);
  if (worker_.joinable()) worker_.join();
}

void Stream::push(int32_t id, uint32_t index, int64_t t_ns, float logprob, const float* watch) {
  lmd_token t;
  t.id = id;
  t.index = index;
  t.t_ns = t_ns;
  t.logprob = logprob;
  t.bundle = 1;
  {
    std::lock_guard<std::mutex> lk(m_);
    tokens_.push_back(t);
    watch_.insert(watch_.end(), watch, watch + spec_.watch.size());
  }
  cv_.notify_all();
}

void Stream::finish(const lmd_result& r) {
  {
    std::lock_guard<std::mutex> lk(m_);
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
  const size_t nw = spec_.watch.size();
  for (size_t i = 0; i < n; ++i) tokens[i] = tokens_[i];
  if (watch_logprobs && nw) std::copy_n(watch_.begin(), n * nw, watch_logprobs);
  tokens_.erase(tokens_.begin(), tokens_.begin() + n);
  watch_.erase(watch_.begin(), watch_.begin() + n * nw);
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
