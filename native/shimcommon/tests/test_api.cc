// Drives the lmd_api table built by shimcommon with a fake engine whose
// generation runs on its own thread, the way the real shims do.
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "check.h"
#include "lmdrive_shim/api.h"
#include "lmdrive_shim/util.h"

using namespace lmdrive::shim;

namespace {

std::atomic<int> g_live_streams{0};

class FakeStream : public ShimStream {
public:
  FakeStream(const RequestSpec& req, int64_t step_ns) : ShimStream(req), req_(req) {
    ++g_live_streams;
    plan_ = plan_tm_stops(req, {99});
    thread_ = std::thread([this, step_ns] { run(step_ns); });
  }
  ~FakeStream() override { --g_live_streams; }
  void request_cancel() noexcept override { stop_.store(true); }
  void wait_engine_released() noexcept override {
    if (thread_.joinable()) thread_.join();
  }

private:
  void run(int64_t step_ns) {
    Clamp clamp{req_.max_new_tokens, req_.max_new_tokens, ""};
    uint32_t produced = 0;
    while (produced < req_.max_new_tokens) {
      if (stop_.load()) {
        ResultCore core;
        core.clamp = clamp;
        core.finish = map_tm_finish(kTmCancel, queue.generated(), plan_, {99}, req_.ignore_eos, clamp, 3, 1000);
        queue.complete(core);
        return;
      }
      std::this_thread::sleep_for(std::chrono::nanoseconds(step_ns));
      // two tokens per observation, the second one bundled with the first
      int32_t ids[2] = {static_cast<int32_t>(10 + produced), static_cast<int32_t>(11 + produced)};
      size_t n = req_.max_new_tokens - produced >= 2 ? 2 : 1;
      queue.push(ids, nullptr, n, now_ns());
      produced += static_cast<uint32_t>(n);
    }
    ResultCore core;
    core.clamp = clamp;
    core.stop_ids = plan_.single_ids;
    core.ignore_eos_applied = req_.ignore_eos;
    core.engine_first_ns = 5;
    core.finish = map_tm_finish(kTmFinish, queue.generated(), plan_, {99}, req_.ignore_eos, clamp, 3, 1000);
    queue.complete(core);
  }

  RequestSpec req_;
  StopPlan plan_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class FakeEngine : public ShimEngine {
public:
  void fill_info(lmd_info& info) override {
    copy_cstr(info.backend, sizeof info.backend, "fake");
    info.vocab_size = 1000;
    info.tp_size = 1;
  }
  std::unique_ptr<ShimStream> start(const RequestSpec& req) override {
    if (req.prompt[0] == 666) fail(LMD_ERR_ENGINE, "engine refused");
    if (req.prompt[0] == 777) throw std::runtime_error("raw std exception");
    return std::make_unique<FakeStream>(req, 200000);
  }
};

std::unique_ptr<ShimEngine> make_fake(const std::string& cfg) {
  if (cfg.find("bad") != std::string::npos) fail(LMD_ERR_INVALID, "bad config");
  return std::make_unique<FakeEngine>();
}

void fake_library_info(lmd_info& info) {
  copy_cstr(info.backend, sizeof info.backend, "fake");
  copy_cstr(info.version, sizeof info.version, "9.9");
}

const lmd_api* api() { return build_api(&make_fake, &fake_library_info); }

lmd_error make_err() {
  lmd_error e;
  std::memset(&e, 0, sizeof e);
  e.struct_size = sizeof e;
  return e;
}

struct Req {
  std::vector<int32_t> prompt = {1, 2, 3};
  lmd_request r;
  Req(uint32_t max_new, uint32_t ignore_eos = 1) {
    std::memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.n_prompt = 3;
    r.prompt = prompt.data();
    r.max_new_tokens = max_new;
    r.ignore_eos = ignore_eos;
    r.top_p = 1.f;
  }
};

// Polls until done; returns the tokens.
std::vector<lmd_token> drain(const lmd_api* a, lmd_stream* s, uint32_t cap = 3) {
  std::vector<lmd_token> all;
  lmd_token buf[8];
  for (int guard = 0; guard < 100000; ++guard) {
    lmd_poll p;
    std::memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    lmd_error e = make_err();
    CHECK_EQ(a->poll(s, buf, nullptr, cap, 50000000, &p, &e), int32_t(LMD_OK));
    for (uint32_t i = 0; i < p.n; ++i) all.push_back(buf[i]);
    if (p.done) break;
  }
  return all;
}

}  // namespace

TEST_CASE(table_header) {
  const lmd_api* a = api();
  CHECK_EQ(a->struct_size, uint32_t(sizeof(lmd_api)));
  CHECK_EQ(a->abi_major, uint32_t(LMDRIVE_ABI_MAJOR));
  int64_t t0 = a->now_ns();
  int64_t t1 = a->now_ns();
  CHECK(t0 > 0 && t1 >= t0);
}

TEST_CASE(info_without_an_engine_describes_the_library) {
  const lmd_api* a = api();
  lmd_info info;
  std::memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  lmd_error err = make_err();
  CHECK_EQ(a->info(nullptr, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(info.backend), std::string("fake"));
  CHECK_EQ(std::string(info.version), std::string("9.9"));
  CHECK_EQ(info.vocab_size, 0u);
}

TEST_CASE(full_generation_with_bundles_and_result) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  lmd_info info;
  std::memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK_EQ(a->info(e, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(info.backend), std::string("fake"));
  CHECK_EQ(info.struct_size, uint32_t(sizeof info));

  Req req(7);
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));

  lmd_result early;
  std::memset(&early, 0, sizeof early);
  early.struct_size = sizeof early;
  CHECK_EQ(a->result(s, &early, &err), int32_t(LMD_ERR_STATE));
  CHECK_EQ(err.code, int32_t(LMD_ERR_STATE));

  auto toks = drain(a, s);
  CHECK_EQ(toks.size(), size_t(7));
  for (size_t i = 0; i < toks.size(); ++i) CHECK_EQ(toks[i].index, uint32_t(i));
  CHECK_EQ(toks[0].bundle, 2u);
  CHECK_EQ(toks[0].t_ns, toks[1].t_ns);  // one observation, one timestamp
  CHECK_EQ(toks[6].bundle, 1u);
  CHECK(toks[2].t_ns >= toks[1].t_ns);
  CHECK(std::isnan(toks[0].logprob));

  lmd_result r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  CHECK_EQ(a->result(s, &r, &err), int32_t(LMD_OK));
  CHECK_EQ(r.finish_reason, int32_t(LMD_FINISH_LENGTH));
  CHECK_EQ(r.raw_status, 7);
  CHECK_EQ(std::string(r.raw_status_text), std::string("kFinish"));
  CHECK_EQ(r.output_tokens, 7u);
  CHECK_EQ(r.prompt_tokens, 3u);
  CHECK_EQ(r.max_new_requested, 7u);
  CHECK_EQ(r.max_new_effective, 7u);
  CHECK_EQ(r.t_first_ns, toks.front().t_ns);
  CHECK_EQ(r.t_last_ns, toks.back().t_ns);
  CHECK(r.t_submit_ns <= r.t_first_ns && r.t_last_ns <= r.t_done_ns);
  CHECK_EQ(r.engine_first_ns, int64_t(5));
  CHECK_EQ(r.engine_last_ns, int64_t(-1));
  CHECK_EQ(r.ignore_eos_applied, 1u);
  CHECK_EQ(r.n_stop_ids, 0u);  // ignore_eos: the EOS id was not passed
  a->close(s);
  CHECK_EQ(g_live_streams.load(), 0);
  a->destroy(e);
}

TEST_CASE(busy_until_close) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  Req req(4);
  lmd_stream* s1 = nullptr;
  lmd_stream* s2 = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s1, &err), int32_t(LMD_OK));
  CHECK_EQ(a->start(e, &req.r, &s2, &err), int32_t(LMD_ERR_BUSY));
  CHECK(s2 == nullptr);
  drain(a, s1);
  CHECK_EQ(a->start(e, &req.r, &s2, &err), int32_t(LMD_ERR_BUSY));  // done but not closed
  a->close(s1);
  CHECK_EQ(a->start(e, &req.r, &s2, &err), int32_t(LMD_OK));
  a->close(s2);
  a->destroy(e);
}

TEST_CASE(cancel_from_another_thread) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  Req req(1000000);
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK_EQ(a->cancel(s), int32_t(LMD_OK));
  });
  auto toks = drain(a, s, 8);
  t.join();
  CHECK(toks.size() < 1000000);
  lmd_result r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  CHECK_EQ(a->result(s, &r, &err), int32_t(LMD_OK));
  CHECK_EQ(r.finish_reason, int32_t(LMD_FINISH_CANCELLED));
  CHECK_EQ(std::string(r.raw_status_text), std::string("kCancel"));
  a->close(s);
  a->destroy(e);
}

TEST_CASE(close_without_draining_cancels_and_joins) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  Req req(1000000);
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));
  a->close(s);
  CHECK_EQ(g_live_streams.load(), 0);
  a->destroy(e);
}

TEST_CASE(destroy_before_close_detaches_stream) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  Req req(1000000);
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));
  a->destroy(e);
  a->close(s);
  CHECK_EQ(g_live_streams.load(), 0);
}

TEST_CASE(errors_become_codes_and_messages) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("bad", &e, &err), int32_t(LMD_ERR_INVALID));
  CHECK_EQ(std::string(err.message), std::string("bad config"));
  CHECK(e == nullptr);
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));

  Req refuse(4);
  refuse.prompt[0] = 666;
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &refuse.r, &s, &err), int32_t(LMD_ERR_ENGINE));
  CHECK_EQ(std::string(err.message), std::string("engine refused"));
  Req raw(4);
  raw.prompt[0] = 777;
  CHECK_EQ(a->start(e, &raw.r, &s, &err), int32_t(LMD_ERR_ENGINE));
  CHECK_EQ(std::string(err.message), std::string("raw std exception"));
  Req zero(0);
  CHECK_EQ(a->start(e, &zero.r, &s, &err), int32_t(LMD_ERR_INVALID));
  CHECK(s == nullptr);
  CHECK_EQ(a->start(e, nullptr, &s, &err), int32_t(LMD_ERR_INVALID));
  // a failed start leaves the engine free
  Req ok(2);
  CHECK_EQ(a->start(e, &ok.r, &s, &err), int32_t(LMD_OK));
  a->close(s);
  a->destroy(e);
}

TEST_CASE(smaller_structs_from_older_callers) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));

  // an info struct that ends before `model`: bytes past it stay untouched
  lmd_info info;
  std::memset(&info, 0xAB, sizeof info);
  info.struct_size = offsetof(lmd_info, version);
  CHECK_EQ(a->info(e, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(info.struct_size, uint32_t(offsetof(lmd_info, version)));
  CHECK_EQ(info.vocab_size, 1000u);
  CHECK_EQ(static_cast<unsigned char>(info.version[0]), 0xABu);

  // a short error buffer gets a truncated, terminated message
  lmd_error small;
  std::memset(&small, 0x5A, sizeof small);
  small.struct_size = offsetof(lmd_error, message) + 5;
  lmd_engine* e2 = nullptr;
  CHECK_EQ(a->create("bad bad bad", &e2, &small), int32_t(LMD_ERR_INVALID));
  CHECK_EQ(std::string(small.message), std::string("bad "));
  CHECK_EQ(static_cast<unsigned char>(small.message[5]), 0x5Au);
  a->destroy(e);
}

TEST_CASE(watch_rows_are_nan) {
  const lmd_api* a = api();
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create("{}", &e, &err), int32_t(LMD_OK));
  Req req(2);
  int32_t watch_ids[2] = {151643, 151645};
  req.r.n_watch = 2;
  req.r.watch_ids = watch_ids;
  lmd_stream* s = nullptr;
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));
  lmd_token toks[4];
  float watch[8];
  for (float& w : watch) w = 1.f;
  uint32_t got = 0;
  bool done = false;
  while (!done) {
    lmd_poll p;
    std::memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    CHECK_EQ(a->poll(s, toks, watch, 4, 100000000, &p, &err), int32_t(LMD_OK));
    if (p.n > 0) {
      for (uint32_t i = 0; i < p.n * 2; ++i) CHECK(std::isnan(watch[i]));
    }
    got += p.n;
    done = p.done != 0;
  }
  CHECK_EQ(got, 2u);
  a->close(s);
  a->destroy(e);
}

TEST_CASE(utf8_safe_truncation) {
  char buf[4];
  copy_cstr(buf, sizeof buf, "ab\xc3\xa9");  // "abé": the é would be cut in half
  CHECK_EQ(std::string(buf), std::string("ab"));
  copy_cstr(buf, sizeof buf, "abc");
  CHECK_EQ(std::string(buf), std::string("abc"));
}

TEST_CASE(steady_clock_is_the_monotonic_clock) {
  int64_t a = now_ns();
  int64_t s = steady_ns_to_monotonic(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
  int64_t b = now_ns();
  CHECK(s >= a && s <= b);
}

TEST_MAIN("shimcommon api")
