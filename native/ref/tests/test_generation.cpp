// Generation through the ABI table with random:tiny (and calibrate mode where
// exact token positions are needed): stop rules in their documented order,
// clamps, cancellation, logprobs, sampling determinism and request checks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "lmdrive.h"
#include "ref_debug.h"

namespace {

const lmd_api* api = lmdrive_get_api();

struct Req {
  std::vector<int32_t> prompt;
  uint32_t max_new = 12, min_new = 0;
  bool ignore_eos = false;
  std::vector<std::vector<int32_t>> stops;
  std::vector<int32_t> watch;
  float temperature = 0, top_p = 1;
  uint32_t top_k = 0;
  uint64_t seed = 0;
  bool logprobs = false;
};

struct Run {
  int32_t rc = LMD_OK;
  std::string error;
  std::vector<lmd_token> tokens;
  std::vector<float> watch;
  lmd_result res{};
  std::vector<int32_t> ids() const {
    std::vector<int32_t> v;
    for (const auto& t : tokens) v.push_back(t.id);
    return v;
  }
};

struct Request {
  lmd_request r{};
  std::vector<int32_t> stop_tokens;
  std::vector<uint32_t> stop_ends;
  explicit Request(const Req& q) {
    for (const auto& s : q.stops) {
      stop_tokens.insert(stop_tokens.end(), s.begin(), s.end());
      stop_ends.push_back(uint32_t(stop_tokens.size()));
    }
    r.struct_size = sizeof r;
    r.n_prompt = uint32_t(q.prompt.size());
    r.prompt = q.prompt.data();
    r.max_new_tokens = q.max_new;
    r.min_new_tokens = q.min_new;
    r.ignore_eos = q.ignore_eos;
    r.n_stop = uint32_t(q.stops.size());
    r.stop_tokens = stop_tokens.data();
    r.stop_ends = stop_ends.data();
    r.n_watch = uint32_t(q.watch.size());
    r.watch_ids = q.watch.data();
    r.temperature = q.temperature;
    r.top_p = q.top_p;
    r.top_k = q.top_k;
    r.seed = q.seed;
    r.want_logprobs = q.logprobs;
  }
};

lmd_engine* create(const std::string& json) {
  lmd_engine* e = nullptr;
  lmd_error err{};
  err.struct_size = sizeof err;
  if (api->create(json.c_str(), &e, &err) != LMD_OK) {
    check::fail(__FILE__, __LINE__, "create " + json + ": " + err.message);
    std::exit(1);
  }
  return e;
}

// Runs to the end; cancel_after >= 0 cancels once that many tokens were seen.
Run generate(lmd_engine* e, const Req& q, int cancel_after = -1) {
  Run run;
  Request req(q);
  lmd_error err{};
  err.struct_size = sizeof err;
  lmd_stream* s = nullptr;
  run.rc = api->start(e, &req.r, &s, &err);
  if (run.rc != LMD_OK) {
    run.error = err.message;
    return run;
  }
  if (cancel_after == 0) api->cancel(s);
  std::vector<lmd_token> buf(64);
  std::vector<float> wbuf(64 * std::max<size_t>(1, q.watch.size()));
  for (;;) {
    lmd_poll p{};
    p.struct_size = sizeof p;
    if (api->poll(s, buf.data(), wbuf.data(), 64, 1000000000, &p, &err) != LMD_OK) {
      check::fail(__FILE__, __LINE__, std::string("poll: ") + err.message);
      break;
    }
    run.tokens.insert(run.tokens.end(), buf.begin(), buf.begin() + p.n);
    run.watch.insert(run.watch.end(), wbuf.begin(), wbuf.begin() + p.n * q.watch.size());
    if (cancel_after > 0 && run.tokens.size() >= size_t(cancel_after)) api->cancel(s);
    if (p.done) break;
  }
  run.res.struct_size = sizeof run.res;
  CHECK_EQ(api->result(s, &run.res, &err), LMD_OK);
  api->close(s);
  return run;
}

std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 31337 + 7) % 151936;
  return p;
}

bool has(const lmd_result& r, int32_t id) {
  return std::find(r.stop_ids, r.stop_ids + r.n_stop_ids, id) != r.stop_ids + r.n_stop_ids;
}

void check_times(const Run& run) {
  const lmd_result& r = run.res;
  CHECK(r.t_submit_ns > 0 && r.t_done_ns >= r.t_submit_ns);
  if (run.tokens.empty()) {
    CHECK(r.t_first_ns == -1 && r.t_last_ns == -1);
    return;
  }
  CHECK(r.t_first_ns >= r.t_submit_ns && r.t_last_ns >= r.t_first_ns && r.t_done_ns >= r.t_last_ns);
  CHECK_EQ(r.t_first_ns, run.tokens.front().t_ns);
  CHECK_EQ(r.t_last_ns, run.tokens.back().t_ns);
  for (size_t i = 0; i < run.tokens.size(); ++i) {
    CHECK_EQ(run.tokens[i].index, uint32_t(i));
    CHECK_EQ(run.tokens[i].bundle, 1u);
    if (i) CHECK(run.tokens[i].t_ns >= run.tokens[i - 1].t_ns);
  }
}

// First index >= 1 whose token did not occur before it.
size_t fresh_index(const std::vector<int32_t>& g) {
  for (size_t i = 1; i < g.size(); ++i)
    if (std::find(g.begin(), g.begin() + i, g[i]) == g.begin() + i) return i;
  return 0;
}

// random:tiny ties lm_head to the embeddings, so its random weights echo the
// last prompt token forever: a prompt ending in an EOS id yields EOS at once.
TEST_CASE(echo_eos) {
  lmd_engine* e = create(R"({"model": "random:tiny", "seed": 1, "threads": 2})");
  Req q;
  q.prompt = prompt(12);
  q.prompt.back() = 151645;
  q.max_new = 6;
  Run r = generate(e, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_EOS);
  CHECK_EQ(r.res.output_tokens, 1u);
  CHECK_EQ(r.res.stop_token, 151645);
  CHECK(has(r.res, 151643) && has(r.res, 151645) && r.res.n_stop_ids == 2);
  q.ignore_eos = true;
  r = generate(e, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LENGTH);
  CHECK(r.ids() == std::vector<int32_t>(6, 151645));
  // The bug class behind early stops under ignore_eos: a stop id that is
  // also an EOS id survives ignore_eos.
  q.stops = {{151645}};
  r = generate(e, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_STOP);
  CHECK_EQ(r.res.output_tokens, 1u);
  CHECK(r.res.n_stop_ids == 1 && has(r.res, 151645) && r.res.ignore_eos_applied == 1);
  api->destroy(e);
}

// random:tiny-untied produces varied tokens, so stops can be placed mid-run.
TEST_CASE(stop_rules) {
  const std::vector<int32_t> p = prompt(24);
  lmd_engine* plain = create(R"({"model": "random:tiny-untied", "seed": 1, "threads": 2, "eos_ids": []})");
  Req q;
  q.prompt = p;
  Run base = generate(plain, q);
  CHECK_EQ(base.res.finish_reason, LMD_FINISH_LENGTH);
  CHECK_EQ(base.res.output_tokens, 12u);
  CHECK_EQ(std::string(base.res.raw_status_text), std::string("length"));
  CHECK_EQ(std::string(base.res.limit_source), std::string("max_new_tokens=12 (request)"));
  CHECK_EQ(base.res.stop_token, -1);
  CHECK_EQ(base.res.n_stop_ids, 0u);
  CHECK_EQ(base.res.max_new_effective, 12u);
  CHECK_EQ(base.res.cached_prompt_tokens, 0);
  CHECK(base.res.device_prefill_ns == -1 && base.res.engine_first_ns == -1);
  check_times(base);
  const std::vector<int32_t> g = base.ids();
  CHECK(generate(plain, q).ids() == g);  // greedy is deterministic

  // The first token is the argmax of the prompt's logits.
  std::vector<float> logits(151936);
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(lmdrive_ref_logits(R"({"model": "random:tiny-untied", "seed": 1, "threads": 2})", p.data(),
                              uint32_t(p.size()), 1, logits.data(), &err),
           LMD_OK);
  CHECK_EQ(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()), g[0]);

  const size_t i = fresh_index(g);
  CHECK(i > 0);
  const int32_t eos = g[i];
  const std::string eos_cfg = R"({"model": "random:tiny-untied", "seed": 1, "threads": 2, "eos_ids": [)" +
                              std::to_string(eos) + "]}";
  lmd_engine* e = create(eos_cfg);

  Run r = generate(e, q);  // EOS ends it, and the EOS token is counted
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_EOS);
  CHECK_EQ(r.res.output_tokens, uint32_t(i + 1));
  CHECK_EQ(r.res.stop_token, eos);
  CHECK_EQ(r.res.stop_sequence, -1);
  CHECK(has(r.res, eos) && r.res.n_stop_ids == 1);
  CHECK_EQ(std::string(r.res.raw_status_text), std::string("eos"));
  CHECK_EQ(r.res.raw_status, LMD_FINISH_EOS);

  Req ig = q;
  ig.ignore_eos = true;
  r = generate(e, ig);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LENGTH);
  CHECK_EQ(r.res.output_tokens, 12u);
  CHECK_EQ(r.res.ignore_eos_applied, 1u);
  CHECK(r.ids() == g && r.res.n_stop_ids == 0);

  // ignore_eos leaves stop sequences active, even one that is an EOS id.
  Req ig_stop = ig;
  ig_stop.stops = {{eos}};
  r = generate(e, ig_stop);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_STOP);
  CHECK_EQ(r.res.output_tokens, uint32_t(i + 1));
  CHECK_EQ(r.res.stop_sequence, 0);
  CHECK_EQ(r.res.stop_token, eos);
  CHECK(has(r.res, eos) && r.res.ignore_eos_applied == 1);

  // EOS is checked before stop sequences.
  Req both = q;
  both.stops = {{eos}};
  r = generate(e, both);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_EOS);

  // Multi-token stop sequence, reported by its index.
  Req multi = q;
  multi.stops = {{1, 2, 3}, {g[i - 1], g[i]}, {g[i]}};
  r = generate(plain, multi);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_STOP);
  CHECK_EQ(r.res.output_tokens, uint32_t(i + 1));
  CHECK_EQ(r.res.stop_sequence, 1);
  CHECK(has(r.res, g[i]) && !has(r.res, 1) && r.res.n_stop_ids == 1);

  // min_new_tokens holds EOS and stops off until it is reached.
  Req min = q;
  min.min_new = uint32_t(i + 2);
  r = generate(e, min);
  CHECK(r.res.output_tokens >= i + 2);
  CHECK(r.ids()[i] == eos);

  Req five = q;
  five.max_new = 5;
  r = generate(plain, five);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LENGTH);
  CHECK_EQ(r.res.output_tokens, 5u);

  api->destroy(e);
  api->destroy(plain);

  // max_seq_len clamp from the config ends the run with LIMIT, not LENGTH.
  lmd_engine* short_ctx =
      create(R"({"model": "random:tiny-untied", "seed": 1, "threads": 2, "max_seq_len": 28})");
  lmd_info info{};
  info.struct_size = sizeof info;
  CHECK_EQ(api->info(short_ctx, &info, &err), LMD_OK);
  CHECK(info.max_seq_len == 28 && info.max_input_len == 27);
  r = generate(short_ctx, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LIMIT);
  CHECK_EQ(r.res.output_tokens, 4u);
  CHECK(r.res.max_new_requested == 12 && r.res.max_new_effective == 4);
  CHECK_EQ(std::string(r.res.limit_source), std::string("max_seq_len=28 (config override)"));
  CHECK_EQ(std::string(r.res.raw_status_text), std::string("limit"));
  CHECK(r.ids() == std::vector<int32_t>(g.begin(), g.begin() + 4));
  Req exact = q;
  exact.max_new = 4;  // the request itself fits exactly: LENGTH
  CHECK_EQ(generate(short_ctx, exact).res.finish_reason, LMD_FINISH_LENGTH);
  Req too_long = q;
  too_long.prompt = prompt(28);
  r = generate(short_ctx, too_long);
  CHECK_EQ(r.rc, LMD_ERR_INVALID);
  CHECK_HAS(r.error, "prompt of 28 tokens leaves no room under max_seq_len=28");
  api->destroy(short_ctx);
}

TEST_CASE(calibrate_mode) {
  // Calibration: token i is i mod vocab, all stop and limit logic intact.
  lmd_engine* c = create(R"({"model": "random:tiny-untied", "calibrate": true, "eos_ids": [7]})");
  Req q;
  q.prompt = prompt(3);
  q.max_new = 100;
  q.logprobs = true;
  Run r = generate(c, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_EOS);
  CHECK_EQ(r.res.output_tokens, 8u);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    CHECK_EQ(r.tokens[i].id, int32_t(i));
    CHECK(std::isnan(r.tokens[i].logprob));
  }
  CHECK_HAS(r.res.detail, "calibrate");
  // The model's own max_position_embeddings (4096) clamps too.
  q.prompt = prompt(4090);
  q.ignore_eos = true;
  r = generate(c, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LIMIT);
  CHECK_EQ(r.res.output_tokens, 6u);
  CHECK_EQ(std::string(r.res.limit_source), std::string("max_seq_len=4096 (model max_position_embeddings)"));
  q.prompt = prompt(3);
  q.max_new = 200000;
  r = generate(c, q);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_LIMIT);
  CHECK_EQ(r.res.output_tokens, 4093u);
  CHECK_EQ(r.tokens.back().id, 4092);
  api->destroy(c);
}

TEST_CASE(cancel_busy_state) {
  lmd_engine* e = create(R"({"model": "random:tiny", "seed": 2, "threads": 2, "eos_ids": []})");
  Req q;
  q.prompt = prompt(16);
  q.max_new = 100000;
  Run r = generate(e, q, 3);
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_CANCELLED);
  CHECK(r.res.output_tokens >= 3 && r.res.output_tokens < 100000);
  CHECK_EQ(std::string(r.res.raw_status_text), std::string("cancelled"));

  // Cancelling a long prefill returns quickly with no tokens.
  Req long_prompt = q;
  long_prompt.prompt = prompt(8000);
  auto t0 = std::chrono::steady_clock::now();
  r = generate(e, long_prompt, 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_EQ(r.res.finish_reason, LMD_FINISH_CANCELLED);
  CHECK_EQ(r.res.output_tokens, 0u);
  CHECK(secs < 2.0);
  check_times(r);

  // max_batch streams at a time; result() only after done; close() cancels.
  lmd_engine* one = create(R"({"model": "random:tiny", "seed": 2, "threads": 2, "max_batch": 1})");
  Request req(q);
  lmd_error err{};
  err.struct_size = sizeof err;
  lmd_stream* s = nullptr;
  lmd_stream* s2 = nullptr;
  CHECK_EQ(api->start(one, &req.r, &s, &err), LMD_OK);
  CHECK_EQ(api->start(one, &req.r, &s2, &err), LMD_ERR_BUSY);
  CHECK(s2 == nullptr);
  CHECK_EQ(err.code, LMD_ERR_BUSY);
  CHECK_HAS(std::string(err.message), "still open");
  lmd_result res{};
  res.struct_size = sizeof res;
  CHECK_EQ(api->result(s, &res, &err), LMD_ERR_STATE);
  api->close(s);
  CHECK_EQ(api->start(one, &req.r, &s, &err), LMD_OK);  // closing gave the place back
  api->close(s);
  api->destroy(one);

  // Destroying an engine with a stream still open stops the stream; closing it later is safe.
  CHECK_EQ(api->start(e, &req.r, &s, &err), LMD_OK);
  api->destroy(e);
  lmd_poll p{};
  p.struct_size = sizeof p;
  lmd_token tok[4];
  do {
    CHECK_EQ(api->poll(s, tok, nullptr, 4, 1000000000, &p, &err), LMD_OK);
  } while (!p.done);
  CHECK_EQ(api->result(s, &res, &err), LMD_OK);
  CHECK_EQ(res.finish_reason, LMD_FINISH_CANCELLED);
  api->close(s);
}

TEST_CASE(logprobs_and_sampling) {
  const std::string cfg = R"({"model": "random:tiny-untied", "seed": 3, "threads": 2})";
  lmd_engine* e = create(cfg);
  Req q;
  q.prompt = prompt(10);
  q.max_new = 1;
  q.logprobs = true;
  q.watch = {151643, 151645, 0};
  Run r = generate(e, q);
  CHECK_EQ(r.watch.size(), size_t(3));
  std::vector<float> logits(151936);
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(lmdrive_ref_logits(cfg.c_str(), q.prompt.data(), 10, 1, logits.data(), &err), LMD_OK);
  double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
  for (float l : logits) sum += std::exp(double(l) - mx);
  const double lse = mx + std::log(sum);
  CHECK(std::fabs(r.tokens[0].logprob - (logits[r.tokens[0].id] - lse)) < 1e-5);
  CHECK(std::fabs(r.watch[0] - (logits[151643] - lse)) < 1e-5);
  CHECK(std::fabs(r.watch[2] - (logits[0] - lse)) < 1e-5);
  q.logprobs = false;  // watched ids come with want_logprobs only
  r = generate(e, q);
  CHECK(std::isnan(r.tokens[0].logprob) && std::isnan(r.watch[0]));

  Req s;
  s.prompt = prompt(10);
  s.max_new = 16;
  s.temperature = 0.8f;
  s.top_k = 50;
  s.top_p = 0.9f;
  s.seed = 123;
  const std::vector<int32_t> a = generate(e, s).ids();
  CHECK(generate(e, s).ids() == a);
  s.seed = 124;
  CHECK(generate(e, s).ids() != a);
  api->destroy(e);
}

TEST_CASE(request_checks) {
  lmd_engine* e = create(R"({"model": "random:tiny", "calibrate": true})");
  auto error_of = [&](const Req& q) {
    Run r = generate(e, q);
    CHECK_EQ(r.rc, LMD_ERR_INVALID);
    return r.error;
  };
  Req ok;
  ok.prompt = {1, 2, 3};
  Req q = ok;
  q.prompt.clear();
  CHECK_HAS(error_of(q), "n_prompt");
  q = ok;
  q.prompt[1] = 151936;
  CHECK_HAS(error_of(q), "prompt[1] token id 151936 is outside the vocabulary");
  q = ok;
  q.max_new = 0;
  CHECK_HAS(error_of(q), "max_new_tokens");
  q = ok;
  q.min_new = 20;
  CHECK_HAS(error_of(q), "min_new_tokens");
  q = ok;
  q.watch.assign(4097, 1);
  CHECK_HAS(error_of(q), "n_watch");
  q = ok;
  q.watch = {-1};
  CHECK_HAS(error_of(q), "watch id");
  q = ok;
  q.temperature = std::nanf("");
  CHECK_HAS(error_of(q), "temperature");
  q = ok;
  q.top_p = 1.5f;
  CHECK_HAS(error_of(q), "top_p");
  q = ok;
  q.temperature = 1;
  q.top_p = 0;
  CHECK_HAS(error_of(q), "top_p");
  q = ok;
  q.stops = {{5}, {}};
  CHECK_HAS(error_of(q), "stop_ends");

  // An older, shorter request struct still works: missing fields take defaults.
  Request old(ok);
  old.r.struct_size = offsetof(lmd_request, n_watch);
  lmd_error err{};
  err.struct_size = sizeof err;
  lmd_stream* s = nullptr;
  CHECK_EQ(api->start(e, &old.r, &s, &err), LMD_OK);
  api->close(s);
  old.r.struct_size = 8;
  CHECK_EQ(api->start(e, &old.r, &s, &err), LMD_ERR_INVALID);

  // A short lmd_error gets a truncated, terminated message.
  struct {
    lmd_error e;
  } small{};
  small.e.struct_size = offsetof(lmd_error, message) + 8;
  Request bad(ok);
  bad.r.max_new_tokens = 0;
  CHECK_EQ(api->start(e, &bad.r, &s, &small.e), LMD_ERR_INVALID);
  CHECK_EQ(small.e.code, LMD_ERR_INVALID);
  CHECK_EQ(std::strlen(small.e.message), size_t(7));
  api->destroy(e);
}

// Polls every stream until all are done (a batch, drained together).
std::vector<Run> drain(const std::vector<lmd_stream*>& streams, size_t n_watch) {
  std::vector<Run> runs(streams.size());
  std::vector<bool> done(streams.size(), false);
  std::vector<lmd_token> buf(64);
  std::vector<float> wbuf(64 * std::max<size_t>(1, n_watch));
  lmd_error err{};
  err.struct_size = sizeof err;
  for (size_t left = streams.size(); left > 0;) {
    for (size_t i = 0; i < streams.size(); ++i) {
      if (done[i]) continue;
      lmd_poll p{};
      p.struct_size = sizeof p;
      CHECK_EQ(api->poll(streams[i], buf.data(), wbuf.data(), 64, 1000000, &p, &err), LMD_OK);
      runs[i].tokens.insert(runs[i].tokens.end(), buf.begin(), buf.begin() + p.n);
      runs[i].watch.insert(runs[i].watch.end(), wbuf.begin(), wbuf.begin() + p.n * n_watch);
      if (p.done) {
        done[i] = true;
        --left;
        runs[i].res.struct_size = sizeof runs[i].res;
        CHECK_EQ(api->result(streams[i], &runs[i].res, &err), LMD_OK);
        api->close(streams[i]);
      }
    }
  }
  return runs;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

std::vector<float> logprobs_of(const Run& r) {
  std::vector<float> v;
  for (const auto& t : r.tokens) v.push_back(t.logprob);
  return v;
}

// Continuous batching on the CPU: every sequence of a batch, of a request
// that joins a running batch, of a batch with one request cancelled, gives
// bit for bit the tokens and logprobs it gives alone; prompts are prefilled
// in chunks while others decode; the limit and bad requests are refused
// whole.
TEST_CASE(batching) {
  lmd_engine* e = create(R"({"model": "random:tiny-untied", "seed": 5, "threads": 2, "max_batch": 8, "step_tokens": 16})");
  lmd_info info{};
  info.struct_size = sizeof info;
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(api->info(e, &info, &err), LMD_OK);
  CHECK_EQ(info.max_sequences, 8u);
  CHECK_EQ(info.batch_flags, uint32_t(LMD_BATCH_JOIN | LMD_BATCH_CHUNKED_PREFILL));
  CHECK_EQ(info.max_step_tokens, 16u);

  const int lengths[] = {5, 70, 17, 1, 33, 48};
  std::vector<Req> qs;
  for (int i = 0; i < 6; ++i) {
    Req q;
    q.prompt = prompt(lengths[i]);
    q.prompt[0] = 1000 + i;
    q.max_new = 12 + 3 * i;
    q.ignore_eos = true;
    q.logprobs = true;
    q.watch = {11, 151643};
    if (i == 4) {  // sampled, seeded: the same draw alone and in a batch
      q.temperature = 0.8f;
      q.top_k = 50;
      q.seed = 42;
    }
    qs.push_back(q);
  }
  std::vector<Run> alone;
  for (const Req& q : qs) alone.push_back(generate(e, q));

  std::vector<Request> reqs;
  for (const Req& q : qs) reqs.emplace_back(q);
  std::vector<const lmd_request*> ptrs;
  for (const Request& r : reqs) ptrs.push_back(&r.r);
  std::vector<lmd_stream*> streams(qs.size(), nullptr);
  CHECK_EQ(api->start_batch(e, uint32_t(ptrs.size()), ptrs.data(), streams.data(), &err), LMD_OK);
  std::vector<Run> batched = drain(streams, 2);
  uint32_t widest = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    CHECK(batched[i].ids() == alone[i].ids());
    CHECK(same_bits(logprobs_of(batched[i]), logprobs_of(alone[i])));
    CHECK(same_bits(batched[i].watch, alone[i].watch));
    CHECK_EQ(batched[i].res.finish_reason, LMD_FINISH_LENGTH);
    check_times(batched[i]);
    const lmd_result& r = batched[i].res;
    CHECK(r.t_scheduled_ns >= r.t_submit_ns && r.t_scheduled_ns <= r.t_first_ns);
    CHECK(r.mean_batch >= 1 && r.mean_batch <= 6 && r.max_batch <= 6);
    widest = std::max(widest, r.max_batch);
    CHECK_EQ(alone[i].res.max_batch, 1u);
  }
  CHECK_EQ(widest, 6u);

  // A request joins a running one; the running one keeps decoding while the
  // newcomer's 70-token prompt goes in by chunks.
  {
    Request a(qs[3]), b(qs[1]);
    a.r.max_new_tokens = 400;
    lmd_stream* sa = nullptr;
    lmd_stream* sb = nullptr;
    CHECK_EQ(api->start(e, &a.r, &sa, &err), LMD_OK);
    std::vector<lmd_token> first(8);
    size_t got = 0;
    while (got < 3) {
      lmd_poll p{};
      p.struct_size = sizeof p;
      CHECK_EQ(api->poll(sa, first.data() + got, nullptr, uint32_t(first.size() - got), 1000000000, &p, &err), LMD_OK);
      got += p.n;
    }
    CHECK_EQ(api->start(e, &b.r, &sb, &err), LMD_OK);
    std::vector<Run> both = drain({sa, sb}, 2);  // both requests watch two ids
    both[0].tokens.insert(both[0].tokens.begin(), first.begin(), first.begin() + got);
    CHECK(both[1].ids() == alone[1].ids());
    Req longer = qs[3];
    longer.max_new = 400;
    longer.watch.clear();
    CHECK(both[0].ids() == generate(e, longer).ids());
    int during = 0;  // tokens of the running request while the newcomer prefilled
    for (const auto& t : both[0].tokens)
      if (t.t_ns > both[1].res.t_submit_ns && t.t_ns < both[1].res.t_first_ns) ++during;
    CHECK(during >= 3);
  }

  // Cancelling one request of a batch leaves the others as they were.
  {
    std::vector<lmd_stream*> three(3, nullptr);
    const lmd_request* tp[] = {&reqs[0].r, &reqs[1].r, &reqs[2].r};
    Request long1(qs[1]);
    long1.r.max_new_tokens = 100000;
    tp[1] = &long1.r;
    CHECK_EQ(api->start_batch(e, 3, tp, three.data(), &err), LMD_OK);
    CHECK_EQ(api->cancel(three[1]), LMD_OK);
    std::vector<Run> runs = drain(three, 2);
    CHECK_EQ(runs[1].res.finish_reason, LMD_FINISH_CANCELLED);
    CHECK(runs[0].ids() == alone[0].ids() && runs[2].ids() == alone[2].ids());
  }

  // The limit, and a bad request, refuse the whole batch and start nothing.
  lmd_engine* two = create(R"({"model": "random:tiny-untied", "seed": 5, "threads": 2, "max_batch": 2})");
  lmd_stream* out[3] = {nullptr, nullptr, nullptr};
  CHECK_EQ(api->start_batch(two, 3, ptrs.data(), out, &err), LMD_ERR_BUSY);
  CHECK(out[0] == nullptr && out[1] == nullptr && out[2] == nullptr);
  Request bad(qs[0]);
  bad.r.max_new_tokens = 0;
  const lmd_request* mixed[] = {&reqs[0].r, &bad.r};
  CHECK_EQ(api->start_batch(two, 2, mixed, out, &err), LMD_ERR_INVALID);
  CHECK_HAS(std::string(err.message), "request 1");
  CHECK(out[0] == nullptr);
  CHECK_EQ(api->start_batch(two, 2, ptrs.data(), out, &err), LMD_OK);
  lmd_stream* extra = nullptr;
  CHECK_EQ(api->start(two, &reqs[0].r, &extra, &err), LMD_ERR_BUSY);
  drain({out[0], out[1]}, 2);
  api->destroy(two);
  api->destroy(e);
}

}  // namespace

TEST_MAIN("test_generation")
