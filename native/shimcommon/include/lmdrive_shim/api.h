// The engine-independent half of every engine library (the reference engine
// and the SDK shims): the lmd_api table, the poll() semantics over a
// thread-safe token queue, struct_size handling, at most max_streams() open
// streams per engine (ABI 1.1: several generations at once), and the rule
// that no C++ exception crosses the C boundary.
//
// A library implements ShimEngine and ShimStream and exports
//   extern "C" const lmd_api* lmdrive_get_api(void) {
//     return lmdrive::shim::api_table<&make_engine, &library_info>();
//   }
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
  // ABI 1.1: when the engine took the request into its batch, and the
  // sequences per step that gave it its tokens (0: not known).
  int64_t scheduled_ns = -1;
  double mean_batch = 0;
  uint32_t max_batch = 0;
};

// Tokens flow from the engine's thread into this queue and out through
// poll(). Generation state (ids seen so far, times) is kept here too.
class TokenQueue {
public:
  TokenQueue(uint32_t n_watch, uint32_t prompt_tokens, int64_t t_submit_ns);

  // Engine side. logprobs may be NULL (NaN is reported); watch may be NULL
  // (NaN rows) or hold n rows of n_watch watched-id logprobs. All n tokens
  // share the observation time t_ns and get bundle = n.
  void push(const int32_t* ids, const float* logprobs, const float* watch, size_t n, int64_t t_ns);
  // Marks the generation as ended; later pushes are dropped.
  void complete(ResultCore core);

  // Caller side: waits up to timeout_ns for tokens or the end, copies up to
  // cap tokens (and their watch rows when watch is not NULL). Returns the
  // number copied; *done is set once the end has been reached and every
  // token returned.
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
  std::deque<float> pending_watch_;  // n_watch_ per pending token
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
  explicit ShimStream(const RequestSpec& req)
      : queue(static_cast<uint32_t>(req.watch_ids.size()), static_cast<uint32_t>(req.prompt.size()),
              req.t_submit_ns) {}
  virtual ~ShimStream() = default;

  // Asks the engine to stop this generation; thread-safe, idempotent, never
  // throws. cancel_requested is already set when this is called.
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
  // Starts one generation; throws ShimError on refusal or failure. The table
  // has already refused a stream beyond max_streams() (LMD_ERR_BUSY).
  virtual std::unique_ptr<ShimStream> start(const RequestSpec& req) = 0;
  // How many streams may be open at once (what fill_info reports as
  // max_sequences); 1 for an engine that runs one generation at a time.
  virtual int max_streams() const { return 1; }
  // Starts several generations that enter the engine together (start_batch):
  // all of them, or none and a ShimError. The default starts them one after
  // the other; an engine with a step loop hands them to one step.
  virtual std::vector<std::unique_ptr<ShimStream>> start_batch(const std::vector<RequestSpec>& reqs);
};

// Writes the devices (at most 16) and the EOS set (at most LMD_MAX_IDS) into
// info's id arrays and counts; device slots past the list hold -1.
void set_info_ids(lmd_info& info, const std::vector<int32_t>& devices, const std::vector<int32_t>& eos_ids);

using EngineFactory = std::unique_ptr<ShimEngine> (*)(const std::string& config_json);
// Fills what the library knows without an engine (backend, version, caps):
// info() with engine == NULL, used by `lmdrive engines`.
using LibraryInfo = void (*)(lmd_info& info);

// The entry points of the table that need no library-specific code.
namespace table {
int64_t now_ns(void);
int32_t create(EngineFactory factory, const char* config_json, lmd_engine** out, lmd_error* err);
int32_t info(LibraryInfo library_info, lmd_engine* e, lmd_info* out, lmd_error* err);
int32_t start(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err);
int32_t start_batch(lmd_engine* e, uint32_t n, const lmd_request* const* reqs, lmd_stream** out, lmd_error* err);
int32_t poll(lmd_stream* s, lmd_token* tokens, float* watch, uint32_t cap, int64_t timeout_ns, lmd_poll* out,
             lmd_error* err);
int32_t cancel(lmd_stream* s);
int32_t result(lmd_stream* s, lmd_result* out, lmd_error* err);
void close(lmd_stream* s);
void destroy(lmd_engine* e);
}  // namespace table

// The lmd_api table of a library whose engines come from Factory. Each
// (Factory, Info) pair has its own table, a constant initialised before the
// program runs: nothing is registered or set at run time, so two libraries
// (or two tables in one test) never share or overwrite each other's factory.
template <EngineFactory Factory, LibraryInfo Info>
const lmd_api* api_table() {
  static constexpr lmd_api kTable = {
      sizeof(lmd_api),
      LMDRIVE_ABI_MAJOR,
      LMDRIVE_ABI_MINOR,
      0,
      &table::now_ns,
      [](const char* config_json, lmd_engine** out, lmd_error* err) {
        return table::create(Factory, config_json, out, err);
      },
      [](lmd_engine* e, lmd_info* out, lmd_error* err) { return table::info(Info, e, out, err); },
      &table::start,
      &table::poll,
      &table::cancel,
      &table::result,
      &table::close,
      &table::destroy,
      &table::start_batch,
  };
  return &kTable;
}

}  // namespace lmdrive::shim
