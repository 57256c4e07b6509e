// One generation as the caller sees it: a queue of tokens filled by the
// engine's scheduler and drained by poll(), the final result, and
// cancellation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "lmdrive.h"
#include "request.h"
#include "scheduler.h"

namespace lmdref {

class Engine;

class Stream : public SequenceSink {
 public:
  Stream(std::shared_ptr<Engine> engine, GenerationSpec spec, int64_t t_submit);
  // Cancels the generation and waits until the scheduler let go of it.
  ~Stream() override;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  const std::shared_ptr<SequenceLink>& link() const { return link_; }
  void cancel();

  // Caller side. Both throw Error for bad arguments or calls out of order.
  void poll(lmd_token* tokens, float* watch_logprobs, uint32_t cap, int64_t timeout_ns,
            lmd_poll* out);
  void result(lmd_result* out);  // a full-size struct

  // Scheduler side.
  void on_token(int32_t id, uint32_t index, int64_t t_ns, float logprob,
                const float* watch) override;
  void on_end(const SequenceEnd& end) override;

 private:
  std::shared_ptr<Engine> engine_;
  std::shared_ptr<SequenceLink> link_;
  int64_t t_submit_;
  size_t n_watch_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<lmd_token> tokens_;
  std::deque<float> watch_;  // n_watch_ per queued token
  uint32_t produced_ = 0;
  int64_t t_first_ = -1, t_last_ = -1;
  bool finished_ = false;
  bool done_reported_ = false;
  lmd_result result_{};
};

}  // namespace lmdref
