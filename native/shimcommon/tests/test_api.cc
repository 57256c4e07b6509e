// Drives the lmd_api table built by shimcommon with a fake engine whose
// generation runs on its own thread, the way the real shims do.
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
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
      queue.push(ids, nullptr, nullptr, n, now_ns());
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
  explicit FakeEngine(int streams = 1) : streams_(streams) {}
  int max_streams() const override { return streams_; }
  void fill_info(lmd_info& info) override {
    info.max_sequences = static_cast<uint32_t>(streams_);
    copy_cstr(info.backend, sizeof info.backend, "fake");
    info.vocab_size = 1000;
    info.tp_size = 1;
  }
  std::unique_ptr<ShimStream> start(const RequestSpec& req) override {
    if (req.prompt[0] == 666) fail(LMD_ERR_ENGINE, "engine refused");
    if (req.prompt[0] == 777) throw std::runtime_error("raw std exception");
    return std::make_unique<FakeStream>(req, 200000);
  }

private:
  int streams_;
};

std::unique_ptr<ShimEngine> make_fake(const std::string& cfg) {
  if (cfg.find("bad") != std::string::npos) fail(LMD_ERR_INVALID, "bad config");
  return std::make_unique<FakeEngine>(cfg.find("\"streams\":3") != std::string::npos ? 3 : 1);
}

void fake_library_info(lmd_info& info) {
  copy_cstr(info.backend, sizeof info.backend, "fake");
  copy_cstr(info.version, sizeof info.version, "9.9");
}

const lmd_api* api() { return api_table<&make_fake, &fake_library_info>(); }

// A second library's engines: a table of its own, next to the first.
class OtherEngine : public ShimEngine {
public:
  void fill_info(lmd_info& info) override { copy_cstr(info.backend, sizeof info.backend, "other"); }
  std::unique_ptr<ShimStream> start(const RequestSpec& req) override {
    return std::make_unique<FakeStream>(req, 1000);
  }
};
std::unique_ptr<ShimEngine> make_other(const std::string&) { return std::make_unique<OtherEngine>(); }
void other_library_info(lmd_info& info) { copy_cstr(info.backend, sizeof info.backend, "other"); }

// A zeroed ABI struct with its struct_size set.
template <class T>
T sized() {
  T v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  return v;
}

lmd_error make_err() { return sized<lmd_error>(); }

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

lmd_engine* new_engine(const lmd_api* a, const char* cfg = "{}") {
  lmd_engine* e = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->create(cfg, &e, &err), int32_t(LMD_OK));
  return e;
}

lmd_stream* start_stream(const lmd_api* a, lmd_engine* e, const Req& req) {
  lmd_stream* s = nullptr;
  lmd_error err = make_err();
  CHECK_EQ(a->start(e, &req.r, &s, &err), int32_t(LMD_OK));
  return s;
}

// Polls until done; returns the tokens.
std::vector<lmd_token> drain(const lmd_api* a, lmd_stream* s, uint32_t cap = 3) {
  std::vector<lmd_token> all;
  lmd_token buf[8];
  for (int guard = 0; guard < 100000; ++guard) {
    lmd_poll p = sized<lmd_poll>();
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

TEST_CASE(each_factory_has_its_own_constant_table) {
  const lmd_api* fake = api();
  const lmd_api* other = api_table<&make_other, &other_library_info>();
  CHECK(fake != other);
  CHECK(fake == api());  // one table per factory, the same every call
  CHECK(fake->create != other->create && fake->info != other->info);
  CHECK(fake->start == other->start);  // the engine-independent entry points are shared
  lmd_error err = make_err();
  lmd_engine* a = nullptr;
  lmd_engine* b = nullptr;
  CHECK_EQ(other->create("{}", &b, &err), int32_t(LMD_OK));  // built second, used first
  CHECK_EQ(fake->create("{}", &a, &err), int32_t(LMD_OK));
  lmd_info ia, ib;
  std::memset(&ia, 0, sizeof ia);
  std::memset(&ib, 0, sizeof ib);
  ia.struct_size = ib.struct_size = sizeof ia;
  CHECK_EQ(fake->info(a, &ia, &err), int32_t(LMD_OK));
  CHECK_EQ(other->info(b, &ib, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(ia.backend), std::string("fake"));
  CHECK_EQ(std::string(ib.backend), std::string("other"));
  CHECK_EQ(other->info(nullptr, &ib, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(ib.backend), std::string("other"));
  fake->destroy(a);
  other->destroy(b);
}

TEST_CASE(info_without_an_engine_describes_the_library) {
  const lmd_api* a = api();
  lmd_info info = sized<lmd_info>();
  lmd_error err = make_err();
  CHECK_EQ(a->info(nullptr, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(info.backend), std::string("fake"));
  CHECK_EQ(std::string(info.version), std::string("9.9"));
  CHECK_EQ(info.vocab_size, 0u);
}

TEST_CASE(full_generation_with_bundles_and_result) {
  const lmd_api* a = api();
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);
  lmd_info info = sized<lmd_info>();
  CHECK_EQ(a->info(e, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(std::string(info.backend), std::string("fake"));
  CHECK_EQ(info.struct_size, uint32_t(sizeof info));

  Req req(7);
  lmd_stream* s = start_stream(a, e, req);

  lmd_result early = sized<lmd_result>();
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

  lmd_result r = sized<lmd_result>();
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
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);
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
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);
  Req req(1000000);
  lmd_stream* s = start_stream(a, e, req);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK_EQ(a->cancel(s), int32_t(LMD_OK));
  });
  auto toks = drain(a, s, 8);
  t.join();
  CHECK(toks.size() < 1000000);
  lmd_result r = sized<lmd_result>();
  CHECK_EQ(a->result(s, &r, &err), int32_t(LMD_OK));
  CHECK_EQ(r.finish_reason, int32_t(LMD_FINISH_CANCELLED));
  CHECK_EQ(std::string(r.raw_status_text), std::string("kCancel"));
  a->close(s);
  a->destroy(e);
}

TEST_CASE(close_without_draining_cancels_and_joins) {
  const lmd_api* a = api();
  lmd_engine* e = new_engine(a);
  Req req(1000000);
  lmd_stream* s = start_stream(a, e, req);
  a->close(s);
  CHECK_EQ(g_live_streams.load(), 0);
  a->destroy(e);
}

TEST_CASE(destroy_before_close_detaches_stream) {
  const lmd_api* a = api();
  lmd_engine* e = new_engine(a);
  Req req(1000000);
  lmd_stream* s = start_stream(a, e, req);
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
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);

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
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);
  Req req(2);
  int32_t watch_ids[2] = {151643, 151645};
  req.r.n_watch = 2;
  req.r.watch_ids = watch_ids;
  lmd_stream* s = start_stream(a, e, req);
  lmd_token toks[4];
  float watch[8];
  for (float& w : watch) w = 1.f;
  uint32_t got = 0;
  bool done = false;
  while (!done) {
    lmd_poll p = sized<lmd_poll>();
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

TEST_CASE(queue_carries_watch_rows_logprobs_and_submit_time) {
  TokenQueue q(2, 5, 1234);
  int32_t ids[2] = {7, 8};
  float lps[2] = {-0.5f, -1.5f};
  float rows[4] = {-1.f, -2.f, -3.f, -4.f};
  q.push(ids, lps, rows, 2, 2000);
  int32_t id3 = 9;
  q.push(&id3, nullptr, nullptr, 1, 3000);  // an engine without watch rows or logprobs: NaN
  q.complete(ResultCore{});
  lmd_token t[4];
  float w[8];
  bool done = false;
  CHECK_EQ(q.poll(t, w, 1, 0, &done), 1u);
  CHECK(!done);
  CHECK(t[0].id == 7 && t[0].logprob == -0.5f && t[0].bundle == 2u && w[0] == -1.f && w[1] == -2.f);
  CHECK_EQ(q.poll(t, w, 4, 0, &done), 2u);
  CHECK(done);
  CHECK(t[0].id == 8 && t[0].index == 1u && w[0] == -3.f && w[1] == -4.f);
  CHECK(t[1].id == 9 && t[1].bundle == 1u && std::isnan(t[1].logprob) && std::isnan(w[2]) && std::isnan(w[3]));
  lmd_result r;
  q.fill_result(r);
  CHECK_EQ(r.t_submit_ns, int64_t(1234));
  CHECK(r.t_first_ns == 2000 && r.t_last_ns == 3000 && r.t_done_ns >= 3000);
  CHECK(r.output_tokens == 3u && r.prompt_tokens == 5u);
}

TEST_CASE(poll_with_the_longest_timeout_still_waits) {
  // An unbounded wait_for would overflow the clock and return at once, empty.
  TokenQueue q(0, 1, -1);
  std::thread pusher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int32_t id = 3;
    q.push(&id, nullptr, nullptr, 1, now_ns());
  });
  lmd_token t[1];
  bool done = false;
  CHECK_EQ(q.poll(t, nullptr, 1, INT64_MAX, &done), 1u);
  pusher.join();
  CHECK(q.t_submit_ns() > 0);  // no submit time given: the queue's creation
}

TEST_CASE(poll_refuses_a_struct_without_done) {
  const lmd_api* a = api();
  lmd_error err = make_err();
  lmd_engine* e = new_engine(a);
  Req req(2);
  lmd_stream* s = start_stream(a, e, req);
  lmd_poll p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = offsetof(lmd_poll, done);
  lmd_token tok[2];
  CHECK_EQ(a->poll(s, tok, nullptr, 2, 0, &p, &err), int32_t(LMD_ERR_INVALID));
  CHECK_EQ(std::string(err.message), std::string("poll: out->struct_size is too small"));
  a->close(s);
  a->destroy(e);
}

TEST_CASE(info_ids_are_capped_and_padded) {
  lmd_info info;
  std::memset(&info, 0, sizeof info);
  std::vector<int32_t> eos(40);
  for (int i = 0; i < 40; ++i) eos[i] = 1000 + i;
  set_info_ids(info, {3, 5}, eos);
  CHECK_EQ(info.n_devices, 2u);
  CHECK(info.device_ids[0] == 3 && info.device_ids[1] == 5 && info.device_ids[2] == -1 && info.device_ids[15] == -1);
  CHECK_EQ(info.n_eos, uint32_t(LMD_MAX_IDS));
  CHECK(info.eos_ids[0] == 1000 && info.eos_ids[LMD_MAX_IDS - 1] == 1000 + LMD_MAX_IDS - 1);
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


TEST_CASE(several_streams_up_to_the_engines_limit) {
  const lmd_api* a = api();
  lmd_engine* e = new_engine(a, R"({"streams":3})");
  lmd_info info = sized<lmd_info>();
  lmd_error err = make_err();
  CHECK_EQ(a->info(e, &info, &err), int32_t(LMD_OK));
  CHECK_EQ(info.max_sequences, 3u);
  Req req(6);
  lmd_stream* s[3];
  for (auto& x : s) x = start_stream(a, e, req);
  lmd_stream* extra = nullptr;
  CHECK_EQ(a->start(e, &req.r, &extra, &err), int32_t(LMD_ERR_BUSY));
  CHECK(std::string(err.message).find("3 of the 3 streams") != std::string::npos);
  for (lmd_stream* x : s) CHECK_EQ(drain(a, x).size(), size_t(6));
  a->close(s[1]);
  const lmd_request* two[] = {&req.r, &req.r};
  lmd_stream* out[2] = {nullptr, nullptr};
  CHECK_EQ(a->start_batch(e, 2, two, out, &err), int32_t(LMD_ERR_BUSY));
  CHECK(std::string(err.message).find("a batch of 2 does not fit") != std::string::npos);
  CHECK(out[0] == nullptr && out[1] == nullptr);
  s[1] = start_stream(a, e, req);
  for (lmd_stream* x : s) a->close(x);
  CHECK_EQ(g_live_streams.load(), 0);
  a->destroy(e);
}

TEST_CASE(start_batch_is_all_or_none) {
  const lmd_api* a = api();
  lmd_engine* e = new_engine(a, R"({"streams":3})");
  Req ok(5), refused(5), bad(0);
  refused.prompt[0] = 666;
  lmd_error err = make_err();
  lmd_stream* out[3] = {nullptr, nullptr, nullptr};
  const lmd_request* with_refused[] = {&ok.r, &refused.r, &ok.r};
  CHECK_EQ(a->start_batch(e, 3, with_refused, out, &err), int32_t(LMD_ERR_ENGINE));
  CHECK_EQ(std::string(err.message), std::string("request 1: engine refused"));
  CHECK(out[0] == nullptr && g_live_streams.load() == 0);
  const lmd_request* with_bad[] = {&ok.r, &ok.r, &bad.r};
  CHECK_EQ(a->start_batch(e, 3, with_bad, out, &err), int32_t(LMD_ERR_INVALID));
  CHECK(std::string(err.message).find("request 2: ") == 0);
  const lmd_request* good[] = {&ok.r, &ok.r, &ok.r};
  CHECK_EQ(a->start_batch(e, 3, good, out, &err), int32_t(LMD_OK));
  for (lmd_stream* x : out) {
    CHECK_EQ(drain(a, x).size(), size_t(5));
    lmd_result r = sized<lmd_result>();
    CHECK_EQ(a->result(x, &r, &err), int32_t(LMD_OK));
    CHECK_EQ(r.t_scheduled_ns, int64_t(-1));  // the fake does not say
    CHECK(std::isnan(r.mean_batch));
    a->close(x);
  }
  CHECK_EQ(a->start_batch(e, 0, good, out, &err), int32_t(LMD_ERR_INVALID));
  a->destroy(e);
}

TEST_CASE(destroy_ends_every_open_stream) {
  const lmd_api* a = api();
  lmd_engine* e = new_engine(a, R"({"streams":3})");
  Req req(1000000);
  const lmd_request* three[] = {&req.r, &req.r, &req.r};
  lmd_stream* out[3];
  lmd_error err = make_err();
  CHECK_EQ(a->start_batch(e, 3, three, out, &err), int32_t(LMD_OK));
  a->destroy(e);
  for (lmd_stream* x : out) {
    drain(a, x);
    a->close(x);
  }
  CHECK_EQ(g_live_streams.load(), 0);
}

TEST_MAIN("shimcommon api")
