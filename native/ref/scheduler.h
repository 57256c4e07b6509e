// Continuous batching: one thread runs every sequence of the engine in
// steps. Each step feeds each decoding sequence its last token and each
// joining sequence a chunk of its prompt, in one Backend::step; then every
// sequence whose step ended on its last position gets its next token (chosen,
// timestamped, handed to its sink, checked against its stop rules). Requests
// join between two steps. While sequences decode, prompts are prefilled in
// chunks of at most step_tokens tokens per step, so the running ones keep
// going; alone, a prompt is prefilled whole (several packed up to
// prefill_tokens).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "kit.h"
#include "model_config.h"
#include "stop_rules.h"

namespace lmdref {

// How a sequence ended, for its result.
struct SequenceEnd {
  StopDecision decision;
  std::vector<int32_t> single_stop_ids;  // what could have ended it
  int64_t t_scheduled_ns = -1;           // taken into the batch (prefill began)
  int64_t device_prefill_ns = -1;        // device time of the steps that prefilled it
  int64_t device_decode_ns = -1;         // and of the steps that decoded it
  double mean_batch = 0;                 // sequences per step that gave it a token
  uint32_t max_batch = 0;
  std::string detail;
};

// Where a sequence's tokens go: the stream of the request. Called on the
// scheduler's thread only; on_end is the last call.
class SequenceSink {
 public:
  virtual ~SequenceSink() = default;
  virtual void on_token(int32_t id, uint32_t index, int64_t t_ns, float logprob,
                        const float* watch) = 0;
  virtual void on_end(const SequenceEnd& end) = 0;
};

// What the scheduler and a request's stream share. The stream sets cancel;
// the scheduler calls the sink until it sets released, after which it never
// touches the sink again (the stream may then go away).
class SequenceLink {
 public:
  SequenceLink(RequestSpec req, Clamp clamp, SequenceSink* sink)
      : req(std::move(req)), clamp(std::move(clamp)), sink_(sink) {}

  const RequestSpec req;
  const Clamp clamp;  // the token budget after the engine's limits
  std::atomic<bool> cancel{false};

  // Blocks until the scheduler is done with the sink.
  void wait_released();
  bool released() const;

 private:
  friend class Scheduler;
  SequenceSink* sink_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  void release();
};

struct SchedulerOptions {
  int max_sequences = 1;     // sequences in the batch at once
  int step_tokens = 512;     // tokens per step while sequences decode
  int prefill_tokens = 8192; // tokens per step of prompts packed while none decodes
};

class Scheduler {
 public:
  // backend is null in calibrate mode: no compute, token i of a sequence is
  // i mod vocab.
  Scheduler(Backend* backend, const ModelConfig& model, std::vector<int32_t> eos_ids,
            SchedulerOptions opt);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const SchedulerOptions& options() const { return opt_; }

  // Hands sequences to the next step, all of them together: a batch is
  // taken in at one step boundary (as far as the backend has room).
  void submit(const std::vector<std::shared_ptr<SequenceLink>>& links);

  // Wakes the thread (a link's cancel flag was set).
  void poke();

  // Ends every sequence (cancelled) and joins the thread; later submits end
  // their sequences at once, cancelled.
  void stop();

 private:
  struct Seq;
  void loop();
  void admit(std::vector<std::unique_ptr<Seq>>& ended);
  void step();
  void finish(Seq& s, StopDecision d, const std::string& detail);

  Backend* backend_;
  uint32_t vocab_;
  std::vector<int32_t> eos_;
  SchedulerOptions opt_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<SequenceLink>> waiting_;  // guarded by mu_
  bool stopping_ = false;                              // guarded by mu_
  uint64_t changes_ = 0;                               // submits and pokes; guarded by mu_
  std::vector<std::unique_ptr<Seq>> active_;           // the thread's own
  std::thread thread_;
};

}  // namespace lmdref
