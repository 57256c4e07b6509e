// The lmd_api table: the only way in from the caller. Every entry point
// catches everything; nothing throws or aborts across the boundary.
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "abi_util.h"
#include "clock.h"
#include "engine.h"
#include "errors.h"
#include "export.h"
#include "stream.h"
#include "version.h"

struct lmd_engine {
  std::shared_ptr<lmdref::Engine> engine;
};

struct lmd_stream {
  std::shared_ptr<lmdref::Stream> stream;
};

namespace lmdref {
namespace {

int64_t api_now_ns(void) { return now_ns(); }

int32_t api_create(const char* config_json, lmd_engine** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) invalid("create: out is NULL");
    *out = nullptr;
    auto handle = std::make_unique<lmd_engine>();
    handle->engine = Engine::create(config_json);
    *out = handle.release();
  });
}

// With no engine, info describes the library: backend, version, caps.
void library_info(lmd_info* out) {
  std::memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  std::snprintf(out->backend, sizeof out->backend, "%s", "ref-cpu");
  std::snprintf(out->version, sizeof out->version, "%s", "lmdrive-ref " LMDRIVE_REF_VERSION);
  out->caps = LMD_CAP_LOGPROBS | LMD_CAP_WATCH | LMD_CAP_SAMPLING;
}

int32_t api_info(lmd_engine* e, lmd_info* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!out) invalid("info: out is NULL");
    lmd_info full;
    if (e) {
      e->engine->info(&full);
    } else {
      library_info(&full);
    }
    if (!copy_out(out, full)) invalid("info: out->struct_size is too small");
  });
}

int32_t api_start(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!e || !out) invalid("start: engine or out is NULL");
    *out = nullptr;
    auto handle = std::make_unique<lmd_stream>();
    handle->stream = e->engine->start(&req, 1)[0];
    *out = handle.release();
  });
}

int32_t api_start_batch(lmd_engine* e, uint32_t n, const lmd_request* const* reqs,
                        lmd_stream** out, lmd_error* err) {
  return guarded(err, [&] {
    if (!e || !reqs || !out || n == 0) invalid("start_batch: engine, reqs or out is NULL, or n is 0");
    std::vector<std::unique_ptr<lmd_stream>> handles(n);
    for (auto& h : handles) h = std::make_unique<lmd_stream>();
    std::vector<std::shared_ptr<Stream>> streams = e->engine->start(reqs, n);
    for (uint32_t i = 0; i < n; ++i) {
      handles[i]->stream = std::move(streams[i]);
      out[i] = handles[i].release();
    }
  });
}

int32_t api_poll(lmd_stream* s, lmd_token* tokens, float* watch_logprobs, uint32_t cap,
                 int64_t timeout_ns, lmd_poll* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) invalid("poll: stream or out is NULL");
    if (out->struct_size < offsetof(lmd_poll, done) + sizeof out->done)
      invalid("poll: out->struct_size is too small");
    lmd_poll p = {};
    p.struct_size = sizeof p;
    s->stream->poll(tokens, watch_logprobs, cap, timeout_ns, &p);
    copy_out(out, p);
  });
}

int32_t api_cancel(lmd_stream* s) {
  if (!s) return LMD_ERR_INVALID;
  try {
    s->stream->cancel();
  } catch (...) {
    return LMD_ERR_ENGINE;
  }
  return LMD_OK;
}

int32_t api_result(lmd_stream* s, lmd_result* out, lmd_error* err) {
  return guarded(err, [&] {
    if (!s || !out) invalid("result: stream or out is NULL");
    lmd_result full;
    s->stream->result(&full);
    if (!copy_out(out, full)) invalid("result: out->struct_size is too small");
  });
}

// The stream cancels its generation and waits for the engine to let go of it.
void api_close(lmd_stream* s) { delete s; }

void api_destroy(lmd_engine* e) {
  if (!e) return;
  e->engine->shutdown();
  delete e;
}

const lmd_api kApi = {
    sizeof(lmd_api), LMDRIVE_ABI_MAJOR, LMDRIVE_ABI_MINOR, 0,
    api_now_ns,      api_create,        api_info,          api_start,
    api_poll,        api_cancel,        api_result,        api_close,
    api_destroy,     api_start_batch,
};

}  // namespace

}  // namespace lmdref

extern "C" LMDREF_EXPORT const lmd_api* lmdrive_get_api(void) { return &lmdref::kApi; }
