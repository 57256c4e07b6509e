// One generation as the caller sees it: a queue of tokens filled by the
// worker thread and drained by poll(), the final result, and cancellation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "lmdrive.h"
#include "request.h"

namespace lmdref {

class Engine;

class Stream {
 public:
  Stream(std::shared_ptr<Engine> engine, GenerationSpec spec, int64_t t_submit);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void launch();  // starts the worker thread
  void cancel() { cancel_.store(true); }
  void join();    // safe to call from several threads, and more than once

  // Caller side. Both throw Error for bad arguments or calls out of order.
  void poll(lmd_token* tokens, float* watch_logprobs, uint32_t cap, int64_t timeout_ns,
            lmd_poll* out);
  void result(lmd_result* out);  // a full-size struct

  // Worker side.
  const GenerationSpec& spec() const { return spec_; }
  int64_t t_submit() const { return t_submit_; }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }
  bool cancelled() const { return cancel_.load(); }
  void push(int32_t id, uint32_t index, int64_t t_ns, float logprob, const float* watch);
  void finish(const lmd_result& r);

 private:
  std::shared_ptr<Engine> engine_;
  GenerationSpec spec_;
  int64_t t_submit_;
  std::atomic<bool> cancel_{false};

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<lmd_token> tokens_;
  std::deque<float> watch_;  // spec_.watch.size() per queued token
  bool finished_ = false;
  bool done_reported_ = false;
  lmd_result result_{};

  std::mutex join_m_;
  std::thread worker_;
};

}  // namespace lmdref
