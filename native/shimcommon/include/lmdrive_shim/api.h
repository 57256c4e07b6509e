// The engine-independent half of a shim: the lmd_api table, the poll()
// semantics over a thread-safe token queue, struct_size handling, and the
// rule that no C++ exception crosses the C boundary.
//
// A shim implements ShimEngine and ShimStream and exports
//   const lmd_api* lmdrive_get_api(void) { return lmdrive::shim::build_api(&factory, &library_info); }
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lmdrive.h"
#include "lmdrive_shim/request.h"

namespace lmdrive::shim {

// Everything the result of one generation holds besides the token log.
struct ResultCore {
  Finish finish;
  Clamp clamp;
  int32_t cached_prompt_tokens = -1;
  int64_t engine_first_ns = -1;
  int64_t engine_last_ns = -1;
  int64_t device_prefill_ns = -1;
  int64_t device_decode_ns = -1;
  bool ignore_eos_applied = false;
  std::vector<int32_t> stop_ids;  // single ids that could end this generation
  std::string detail;             // appended after finish.note
};

// Tokens flow from the engine's thread into this queue and out through
// poll(). Generation state (ids seen so far, times) is kept here too.
class TokenQueue {
public:
  TokenQueue(uint32_t n_watch, uint32_t prompt_tokens);

  // Engine side. logprobs may be NULL. All n tokens share the observation
  // time t_ns and get bundle = n.
  void push(const int32_t* ids, const float* logprobs, size_t n, int64_t t_ns);
  // Marks the generation as ended; later pushes are dropped.
  void complete(ResultCore core);

  // Caller side: waits up to timeout_ns for tokens or the end, copies up to
  // cap tokens. Returns the number copied; *done is set once the end has been
  // reached and every token returned.
  uint32_t poll(lmd_token* out, float* watch, uint32_t cap, int64_t timeout_ns, bool* done);

  bool completed() const;
  // Waits until complete() was called; false on timeout (timeout_ns < 0: forever).
  bool wait_completed(int64_t timeout_ns) const;
  // Snapshot of the generated ids so far (used to infer finish reasons).
  std::vector<int32_t> generated() const;
  uint32_t n_generated() const;

  void fill_result(lmd_result& r) const;
  int64_t t_submit_ns() const { return t_submit_; }

private:
  struct Tok {
    int32_t id;
    uint32_t index;
    int64_t t_ns;
    float logprob;
    uint32_t bundle;
  };
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Tok> pending_;
  std::vector<int32_t> ids_;
  uint32_t n_watch_;
  uint32_t prompt_tokens_;
  int64_t t_submit_;
  int64_t t_first_ = -1;
  int64_t t_last_ = -1;
  int64_t t_done_ = -1;
  bool completed_ = false;
  ResultCore core_;
};

class ShimStream {
public:
  ShimStream(const RequestSpec& req) : queue(static_cast<uint32_t>(req.watch_ids.size()),
                                             static_cast<uint32_t>(req.prompt.size())) {}
  virtual ~ShimStream() = default;

  // Asks the engine to stop this generation; thread-safe, idempotent, never throws.
  virtual void request_cancel() noexcept = 0;
  // Called by close() after request_cancel() when the generation has not
  // ended: waits for the engine's threads to let go of this stream.
  virtual void wait_engine_released() noexcept = 0;

  TokenQueue queue;
  std::atomic<bool> cancel_requested{false};
};

class ShimEngine {
public:
  virtual ~ShimEngine() = default;
  virtual void fill_info(lmd_info& info) = 0;
  // Starts one generation; throws ShimError on refusal or failure.
  virtual std::unique_ptr<ShimStream> start(const RequestSpec& req) = 0;
};

using EngineFactory = std::unique_ptr<ShimEngine> (*)(const std::string& config_json);
// Fills what the library knows without an engine (backend, SDK version):
// info() with engine == NULL, used by `lmdrive engines`.
using LibraryInfo = void (*)(lmd_info& info);

// Returns the library's lmd_api table bound to factory (one per library).
const lmd_api* build_api(EngineFactory factory, LibraryInfo library_info);

}  // namespace lmdrive::shim
