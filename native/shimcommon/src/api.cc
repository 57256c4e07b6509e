#include "lmdrive_shim/api.h"

#include <algorithm>
#include <chrono>
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
  lmd_stream* active = nullptr;  // the stream not yet closed, if any
};

struct lmd_stream {
  std::unique_ptr<ShimStream> impl;
  lmd_engine* owner = nullptr;  // cleared when the engine is destroyed first
  bool done_reported = false;
};

namespace lmdrive::shim {

// ---- TokenQueue -------------------------------------------------------------

TokenQueue::TokenQueue(uint32_t n_watch, uint32_t prompt_tokens)
    : n_watch_(n_watch), prompt_tokens_(prompt_tokens), t_submit_(now_ns()) {}

void TokenQueue::push(const int32_t* ids, const float* logprobs, size_t n, int64_t t_ns) {
  if (n == 0) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (completed_) return;
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
    cv_.wait_for(lk, std::chrono::nanoseconds(timeout_ns), [&] { return !pending_.empty() || completed_; });
  }
  uint32_t n = 0;
  while (n < cap && !pending_.empty()) {
    const Tok& t = pending_.front();
    lmd_token& o = out[n];
    o.id = t.id;
    o.index = t.index;
    o.t_ns = t.t_ns;
    o.logprob = t.logprob;
    o.bundle = t.bundle;
    if (watch && n_watch_ > 0) {
      // Neither engine reports watched-id logprobs: NaN marks "not available".
      for (uint32_t w = 0; w < n_watch_; ++w) {
        watch[static_cast<size_t>(n) * n_watch_ + w] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    pending_.pop_front();
    ++n;
  }
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
}

// ---- helpers -----------------------------------------------------------------


namespace {

EngineFactory g_factory = nullptr;
LibraryInfo g_library_info = nullptr;

using lmdrive::guarded;

int64_t api_now_ns(void) { return now_ns(); }

int32_t api_create(const char* config_json, lmd_engine** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) fail(LMD_ERR_INVALID, "create: out is NULL");
    *out = nullptr;
    if (!g_factory) fail(LMD_ERR_ENGINE, "library has no engine factory");
    std::string cfg = config_json ? config_json : "{}";
    auto e = std::make_unique<lmd_engine>();
    e->impl = g_factory(cfg);
    *out = e.release();
  });
}

int32_t api_info(lmd_engine* e, lmd_info* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) fail(LMD_ERR_INVALID, "info: out is NULL");
    if (out->struct_size < sizeof(uint32_t)) fail(LMD_ERR_INVALID, "info: struct_size not set");
    lmd_info full;
    std::memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    if (e) {
      e->impl->fill_info(full);
    } else if (g_library_info) {
      g_library_info(full);  // the library alone, no engine
    }
    lmdrive::copy_out(out, full);
  });
}

int32_t api_start(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!e || !out) fail(LMD_ERR_INVALID, "start: NULL argument");
    *out = nullptr;
    RequestSpec spec = copy_request(req);
    std::lock_guard<std::mutex> lk(e->mu);
    if (e->active) fail(LMD_ERR_BUSY, "a stream is still open on this engine; close it first");
    auto s = std::make_unique<lmd_stream>();
    s->impl = e->impl->start(spec);
    s->owner = e;
    e->active = s.get();
    *out = s.release();
  });
}

int32_t api_poll(lmd_stream* s, lmd_token* tokens, float* watch, uint32_t cap, int64_t timeout_ns, lmd_poll* out,
                 lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) fail(LMD_ERR_INVALID, "poll: NULL argument");
    if (cap > 0 && !tokens) fail(LMD_ERR_INVALID, "poll: tokens is NULL with cap > 0");
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

int32_t api_cancel(lmd_stream* s) {
  if (!s) return LMD_ERR_INVALID;
  try {
    s->impl->cancel_requested.store(true);
    s->impl->request_cancel();
  } catch (...) {
    return LMD_ERR_ENGINE;
  }
  return LMD_OK;
}

int32_t api_result(lmd_stream* s, lmd_result* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) fail(LMD_ERR_INVALID, "result: NULL argument");
    if (!s->done_reported) fail(LMD_ERR_STATE, "result: poll() has not reported done yet");
    lmd_result full;
    s->impl->queue.fill_result(full);
    lmdrive::copy_out(out, full);
  });
}

void release_stream(lmd_stream* s) noexcept {
  if (!s->impl->queue.completed()) {
    s->impl->cancel_requested.store(true);
    s->impl->request_cancel();
  }
  s->impl->wait_engine_released();
}

void api_close(lmd_stream* s) {
  if (!s) return;
  try {
    release_stream(s);
    lmd_engine* owner = s->owner;
    if (owner) {
      std::lock_guard<std::mutex> lk(owner->mu);
      if (owner->active == s) owner->active = nullptr;
    }
    delete s;
  } catch (...) {
    // Nothing may escape; a stream that cannot be torn down is leaked.
  }
}

void api_destroy(lmd_engine* e) {
  if (!e) return;
  try {
    {
      std::lock_guard<std::mutex> lk(e->mu);
      if (e->active) {
        // The caller still holds this stream: end its generation and detach
        // it; close() will free it later without touching the engine.
        release_stream(e->active);
        e->active->owner = nullptr;
        e->active = nullptr;
      }
    }
    delete e;
  } catch (...) {
  }
}

// All of them or none: a stream started before a failure is closed again.
int32_t api_start_batch(lmd_engine* e, uint32_t n, const lmd_request* const* reqs, lmd_stream** out,
                        lmd_error* err) {
  std::vector<lmd_stream*> started(n, nullptr);
  const int32_t rc = guarded(err, [&] {
    if (!e || !reqs || !out || n == 0) fail(LMD_ERR_INVALID, "start_batch: NULL argument or n is 0");
    if (n > 1) fail(LMD_ERR_BUSY, strf("a batch of %u requests: this engine runs one generation at a time", n));
    lmd_error inner;
    inner.struct_size = sizeof inner;
    const int32_t code = api_start(e, reqs[0], &started[0], &inner);
    if (code != LMD_OK) fail(code, inner.message);
  });
  if (rc != LMD_OK) {
    for (lmd_stream* s : started)
      if (s) api_close(s);
    return rc;
  }
  std::copy(started.begin(), started.end(), out);
  return LMD_OK;
}

lmd_api g_api;

}  // namespace

const lmd_api* build_api(EngineFactory factory, LibraryInfo library_info) {
  static std::once_flag once;
  std::call_once(once, [&] {
    g_factory = factory;
    g_library_info = library_info;
    std::memset(&g_api, 0, sizeof g_api);
    g_api.struct_size = sizeof g_api;
    g_api.abi_major = LMDRIVE_ABI_MAJOR;
    g_api.abi_minor = LMDRIVE_ABI_MINOR;
    g_api.now_ns = &api_now_ns;
    g_api.create = &api_create;
    g_api.info = &api_info;
    g_api.start = &api_start;
    g_api.poll = &api_poll;
    g_api.cancel = &api_cancel;
    g_api.result = &api_result;
    g_api.close = &api_close;
    g_api.destroy = &api_destroy;
    g_api.start_batch = &api_start_batch;
  });
  return &g_api;
}

}  // namespace lmdrive::shim
