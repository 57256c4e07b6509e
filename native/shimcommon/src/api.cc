#include "lmdrive_shim/api.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "lmdrive_shim/util.h"

using lmdrive::shim::ShimEngine;
using lmdrive::shim::ShimStream;

// The opaque handles of lmdrive.h.
struct lmd_engine {
  std::unique_ptr<ShimEngine> impl;
  std::mutex mu;
  std::vector<lmd_stream*> open;  // streams started and not yet closed
};

struct lmd_stream {
  std::unique_ptr<ShimStream> impl;
  lmd_engine* owner = nullptr;  // cleared when the engine is destroyed first
  bool done_reported = false;
};

namespace lmdrive::shim {

// ---- TokenQueue -------------------------------------------------------------

TokenQueue::TokenQueue(uint32_t n_watch, uint32_t prompt_tokens, int64_t t_submit_ns)
    : n_watch_(n_watch), prompt_tokens_(prompt_tokens), t_submit_(t_submit_ns >= 0 ? t_submit_ns : now_ns()) {}

void TokenQueue::push(const int32_t* ids, const float* logprobs, const float* watch, size_t n, int64_t t_ns) {
  if (n == 0) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (completed_) return;
    const size_t n_rows = n * n_watch_;
    if (watch) {
      pending_watch_.insert(pending_watch_.end(), watch, watch + n_rows);
    } else {
      pending_watch_.insert(pending_watch_.end(), n_rows, std::numeric_limits<float>::quiet_NaN());
    }
    for (size_t i = 0; i < n; ++i) {
      Tok t;
      t.id = ids[i];
      t.index = static_cast<uint32_t>(ids_.size());
      t.t_ns = t_ns;
      t.logprob = logprobs ? logprobs[i] : std::numeric_limits<float>::quiet_NaN();
      t.bundle = static_cast<uint32_t>(n);
      pending_.push_back(t);
      ids_.push_back(t.id);
    }
    if (t_first_ < 0) t_first_ = t_ns;
    t_last_ = t_ns;
  }
  cv_.notify_all();
}

void TokenQueue::complete(ResultCore core) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (completed_) return;
    core_ = std::move(core);
    t_done_ = now_ns();
    completed_ = true;
  }
  cv_.notify_all();
}

uint32_t TokenQueue::poll(lmd_token* out, float* watch, uint32_t cap, int64_t timeout_ns, bool* done) {
  std::unique_lock<std::mutex> lk(mu_);
  if (pending_.empty() && !completed_ && timeout_ns > 0) {
    // Capped (about 115 days) so that adding it to now() cannot overflow.
    constexpr int64_t kMaxWait = 10000000000000000LL;
    cv_.wait_for(lk, std::chrono::nanoseconds(std::min(timeout_ns, kMaxWait)),
                 [&] { return !pending_.empty() || completed_; });
  }
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(cap, pending_.size()));
  for (uint32_t i = 0; i < n; ++i) {
    const Tok& t = pending_[i];
    lmd_token& o = out[i];
    o.id = t.id;
    o.index = t.index;
    o.t_ns = t.t_ns;
    o.logprob = t.logprob;
    o.bundle = t.bundle;
  }
  const size_t n_rows = static_cast<size_t>(n) * n_watch_;
  if (watch && n_rows > 0) std::copy_n(pending_watch_.begin(), n_rows, watch);
  pending_.erase(pending_.begin(), pending_.begin() + n);
  pending_watch_.erase(pending_watch_.begin(), pending_watch_.begin() + static_cast<ptrdiff_t>(n_rows));
  *done = completed_ && pending_.empty();
  return n;
}

bool TokenQueue::completed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return completed_;
}

bool TokenQueue::wait_completed(int64_t timeout_ns) const {
  std::unique_lock<std::mutex> lk(mu_);
  if (timeout_ns < 0) {
    cv_.wait(lk, [&] { return completed_; });
    return true;
  }
  return cv_.wait_for(lk, std::chrono::nanoseconds(timeout_ns), [&] { return completed_; });
}

std::vector<int32_t> TokenQueue::generated() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_;
}

uint32_t TokenQueue::n_generated() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<uint32_t>(ids_.size());
}

void TokenQueue::fill_result(lmd_result& r) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.finish_reason = core_.finish.reason;
  r.raw_status = core_.finish.raw_status;
  r.prompt_tokens = prompt_tokens_;
  r.output_tokens = static_cast<uint32_t>(ids_.size());
  r.cached_prompt_tokens = core_.cached_prompt_tokens;
  r.max_new_requested = core_.clamp.requested;
  r.max_new_effective = core_.clamp.effective;
  r.stop_token = core_.finish.stop_token;
  r.stop_sequence = core_.finish.stop_sequence;
  r.t_submit_ns = t_submit_;
  r.t_first_ns = t_first_;
  r.t_last_ns = t_last_;
  r.t_done_ns = t_done_;
  r.device_prefill_ns = core_.device_prefill_ns;
  r.device_decode_ns = core_.device_decode_ns;
  r.engine_first_ns = core_.engine_first_ns;
  r.engine_last_ns = core_.engine_last_ns;
  r.ignore_eos_applied = core_.ignore_eos_applied ? 1 : 0;
  size_t n = core_.stop_ids.size();
  if (n > LMD_MAX_IDS) n = LMD_MAX_IDS;
  r.n_stop_ids = static_cast<uint32_t>(n);
  for (size_t i = 0; i < n; ++i) r.stop_ids[i] = core_.stop_ids[i];
  copy_cstr(r.raw_status_text, sizeof r.raw_status_text, core_.finish.raw_text);
  std::string limit = core_.finish.limit_source.empty() ? core_.clamp.limit_source : core_.finish.limit_source;
  copy_cstr(r.limit_source, sizeof r.limit_source, limit);
  std::string detail = core_.finish.note;
  if (!core_.detail.empty()) {
    if (!detail.empty()) detail += "; ";
    detail += core_.detail;
  }
  copy_cstr(r.detail, sizeof r.detail, detail);
  r.t_scheduled_ns = core_.scheduled_ns;
  r.mean_batch = core_.mean_batch > 0 ? static_cast<float>(core_.mean_batch) : std::numeric_limits<float>::quiet_NaN();
  r.max_batch = core_.max_batch;
}

// ---- ShimEngine ----------------------------------------------------------------

std::vector<std::unique_ptr<ShimStream>> ShimEngine::start_batch(const std::vector<RequestSpec>& reqs) {
  std::vector<std::unique_ptr<ShimStream>> out;
  try {
    for (size_t i = 0; i < reqs.size(); ++i) {
      try {
        out.push_back(start(reqs[i]));
      } catch (const ShimError& x) {
        fail(x.code(), strf("request %zu: %s", i, x.what()));
      }
    }
  } catch (...) {
    // All or none: the ones already started end before the error goes up.
    for (auto& s : out) {
      s->cancel_requested.store(true);
      s->request_cancel();
      s->wait_engine_released();
    }
    throw;
  }
  return out;
}

// ---- lmd_info ------------------------------------------------------------------

void set_info_ids(lmd_info& info, const std::vector<int32_t>& devices, const std::vector<int32_t>& eos_ids) {
  constexpr size_t kMaxDevices = sizeof info.device_ids / sizeof info.device_ids[0];
  const size_t nd = std::min(devices.size(), kMaxDevices);
  info.n_devices = static_cast<uint32_t>(nd);
  for (size_t i = 0; i < kMaxDevices; ++i) info.device_ids[i] = i < nd ? devices[i] : -1;
  const size_t ne = std::min<size_t>(eos_ids.size(), LMD_MAX_IDS);
  info.n_eos = static_cast<uint32_t>(ne);
  std::copy_n(eos_ids.begin(), ne, info.eos_ids);
}

// ---- the table's entry points ------------------------------------------------

namespace table {

using lmdrive::guarded;

int64_t now_ns(void) { return shim::now_ns(); }

int32_t create(EngineFactory factory, const char* config_json, lmd_engine** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) invalid("create: out is NULL");
    *out = nullptr;
    if (!factory) fail(LMD_ERR_ENGINE, "library has no engine factory");
    std::string cfg = config_json ? config_json : "{}";
    auto e = std::make_unique<lmd_engine>();
    e->impl = factory(cfg);
    *out = e.release();
  });
}

int32_t info(LibraryInfo library_info, lmd_engine* e, lmd_info* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) invalid("info: out is NULL");
    lmd_info full;
    std::memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    if (e) {
      e->impl->fill_info(full);
    } else if (library_info) {
      library_info(full);  // the library alone, no engine
    }
    if (!lmdrive::copy_out(out, full)) invalid("info: out->struct_size is too small");
  });
}

namespace {

// Refuses n more streams when they would exceed what the engine runs at once.
void check_room(lmd_engine* e, size_t n) {
  const size_t limit = static_cast<size_t>(std::max(1, e->impl->max_streams()));
  if (e->open.size() + n <= limit) return;
  if (limit == 1) fail(LMD_ERR_BUSY, "a stream is still open on this engine (batch 1); close it first");
  fail(LMD_ERR_BUSY, strf("%zu of the %zu streams this engine runs at once are open; %s", e->open.size(), limit,
                          n > 1 ? strf("a batch of %zu does not fit", n).c_str() : "close one first"));
}

lmd_stream* adopt(lmd_engine* e, std::unique_ptr<ShimStream> impl) {
  auto s = std::make_unique<lmd_stream>();
  s->impl = std::move(impl);
  s->owner = e;
  e->open.push_back(s.get());
  return s.release();
}

}  // namespace

int32_t start(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!e || !out) invalid("start: engine or out is NULL");
    *out = nullptr;
    RequestSpec spec = copy_request(req);
    std::lock_guard<std::mutex> lk(e->mu);
    check_room(e, 1);
    *out = adopt(e, e->impl->start(spec));
  });
}

int32_t start_batch(lmd_engine* e, uint32_t n, const lmd_request* const* reqs, lmd_stream** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!e || !reqs || !out || n == 0) invalid("start_batch: engine, reqs or out is NULL, or n is 0");
    std::vector<RequestSpec> specs;
    specs.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      try {
        specs.push_back(copy_request(reqs[i]));
      } catch (const ShimError& x) {
        fail(x.code(), strf("request %u: %s", i, x.what()));
      }
    }
    std::lock_guard<std::mutex> lk(e->mu);
    check_room(e, n);
    std::vector<std::unique_ptr<ShimStream>> streams = e->impl->start_batch(specs);
    if (streams.size() != n) fail(LMD_ERR_ENGINE, "start_batch: the engine started a different number of streams");
    for (uint32_t i = 0; i < n; ++i) out[i] = adopt(e, std::move(streams[i]));
  });
}

int32_t poll(lmd_stream* s, lmd_token* tokens, float* watch, uint32_t cap, int64_t timeout_ns, lmd_poll* out,
             lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) invalid("poll: stream or out is NULL");
    if (out->struct_size < offsetof(lmd_poll, done) + sizeof out->done) {
      invalid("poll: out->struct_size is too small");
    }
    if (cap > 0 && !tokens) invalid("poll: tokens is NULL but cap > 0");
    bool done = false;
    uint32_t n = s->impl->queue.poll(tokens, watch, cap, timeout_ns, &done);
    if (done) s->done_reported = true;
    lmd_poll full;
    std::memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    full.n = n;
    full.done = done ? 1 : 0;
    lmdrive::copy_out(out, full);
  });
}

int32_t cancel(lmd_stream* s) {
  if (!s) return LMD_ERR_INVALID;
  try {
    s->impl->cancel_requested.store(true);
    s->impl->request_cancel();
  } catch (...) {
    return LMD_ERR_ENGINE;
  }
  return LMD_OK;
}

int32_t result(lmd_stream* s, lmd_result* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) invalid("result: stream or out is NULL");
    if (!s->done_reported) fail(LMD_ERR_STATE, "result: poll() has not reported done yet");
    lmd_result full;
    s->impl->queue.fill_result(full);
    if (!lmdrive::copy_out(out, full)) invalid("result: out->struct_size is too small");
  });
}

namespace {

void release_stream(lmd_stream* s) noexcept {
  if (!s->impl->queue.completed()) {
    s->impl->cancel_requested.store(true);
    s->impl->request_cancel();
  }
  s->impl->wait_engine_released();
}

}  // namespace

void close(lmd_stream* s) {
  if (!s) return;
  try {
    release_stream(s);
    lmd_engine* owner = s->owner;
    if (owner) {
      std::lock_guard<std::mutex> lk(owner->mu);
      owner->open.erase(std::remove(owner->open.begin(), owner->open.end(), s), owner->open.end());
    }
    delete s;
  } catch (...) {
    // Nothing may escape; a stream that cannot be torn down is leaked.
  }
}

void destroy(lmd_engine* e) {
  if (!e) return;
  try {
    {
      std::lock_guard<std::mutex> lk(e->mu);
      // The caller still holds these streams: end their generations and
      // detach them; close() will free them later without touching the engine.
      for (lmd_stream* s : e->open) {
        s->impl->cancel_requested.store(true);
        s->impl->request_cancel();
      }
      for (lmd_stream* s : e->open) {
        release_stream(s);
        s->owner = nullptr;
      }
      e->open.clear();
    }
    delete e;
  } catch (...) {
  }
}

}  // namespace table

}  // namespace lmdrive::shim
