#include <cmath>
#include <cstring>

#include "check.h"
#include "lmdrive_shim/request.h"

using namespace lmdrive::shim;

static lmd_request base_request(const std::vector<int32_t>& prompt) {
  lmd_request r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.n_prompt = static_cast<uint32_t>(prompt.size());
  r.prompt = prompt.data();
  r.max_new_tokens = 8;
  r.top_p = 1.f;
  return r;
}

TEST_CASE(copies_request_and_stop_sequences) {
  std::vector<int32_t> prompt = {1, 2, 3};
  std::vector<int32_t> stop_tokens = {7, 8, 9, 10};
  std::vector<uint32_t> stop_ends = {1, 3, 4};
  lmd_request r = base_request(prompt);
  r.n_stop = 3;
  r.stop_tokens = stop_tokens.data();
  r.stop_ends = stop_ends.data();
  r.ignore_eos = 1;
  r.min_new_tokens = 2;
  r.temperature = 0.7f;
  r.top_p = 0.9f;
  r.top_k = 20;
  r.seed = 42;
  RequestSpec s = copy_request(&r);
  CHECK_EQ(s.prompt.size(), size_t(3));
  CHECK_EQ(s.stops.size(), size_t(3));
  CHECK_EQ(s.stops[0].size(), size_t(1));
  CHECK_EQ(s.stops[1][1], 9);
  CHECK_EQ(s.stops[2][0], 10);
  CHECK(s.ignore_eos);
  CHECK_EQ(s.min_new_tokens, 2u);
  CHECK_EQ(s.top_k, 20u);
  CHECK_EQ(s.seed, uint64_t(42));
}

TEST_CASE(older_smaller_request_reads_missing_fields_as_defaults) {
  std::vector<int32_t> prompt = {5};
  lmd_request r = base_request(prompt);
  r.struct_size = offsetof(lmd_request, n_stop);  // caller knew nothing past ignore_eos
  r.temperature = 123.f;                        // beyond struct_size: must be ignored
  RequestSpec s = copy_request(&r);
  CHECK_EQ(s.temperature, 0.f);
  CHECK_EQ(s.top_p, 1.f);
  CHECK(s.stops.empty());
}

TEST_CASE(rejects_bad_requests) {
  std::vector<int32_t> prompt = {1, 2};
  lmd_request r = base_request(prompt);
  r.max_new_tokens = 0;
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "max_new_tokens");
  r = base_request(prompt);
  r.n_prompt = 0;
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "empty prompt");
  r = base_request(prompt);
  r.min_new_tokens = 9;
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "min_new_tokens");
  r = base_request(prompt);
  std::vector<uint32_t> ends = {2, 2};
  std::vector<int32_t> toks = {1, 2};
  r.n_stop = 2;
  r.stop_ends = ends.data();
  r.stop_tokens = toks.data();
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "not increasing");
  r = base_request(prompt);
  r.top_p = 0.f;
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "top_p");
  CHECK_THROWS(copy_request(nullptr), LMD_ERR_INVALID, "NULL");
  std::vector<int32_t> neg = {1, -4};
  r = base_request(neg);
  CHECK_THROWS(copy_request(&r), LMD_ERR_INVALID, "negative");
}

static RequestSpec spec(bool ignore_eos, std::vector<std::vector<int32_t>> stops = {}) {
  RequestSpec s;
  s.prompt = {1, 2, 3};
  s.max_new_tokens = 100;
  s.ignore_eos = ignore_eos;
  s.stops = std::move(stops);
  return s;
}

TEST_CASE(trt_stop_plan_uses_one_end_id_and_extra_eos_as_words) {
  StopPlan p = plan_trt_stops(spec(false, {{50}, {60, 61}}), {151645, 151643});
  CHECK_EQ(p.end_id, 151645);
  CHECK_EQ(p.words.size(), size_t(3));  // two user words + the second EOS id
  CHECK_EQ(p.n_user_words, size_t(2));
  CHECK_EQ(p.words[2][0], 151643);
  // single ids: end id, the one-token user word, the extra EOS; not the 2-token word
  CHECK_EQ(p.single_ids.size(), size_t(3));
  CHECK_EQ(p.single_ids[0], 151645);
}

TEST_CASE(trt_ignore_eos_clears_every_eos_but_keeps_user_stops) {
  StopPlan p = plan_trt_stops(spec(true, {{50}}), {151645, 151643});
  CHECK_EQ(p.end_id, -1);
  CHECK_EQ(p.words.size(), size_t(1));
  CHECK_EQ(p.single_ids.size(), size_t(1));
  CHECK_EQ(p.single_ids[0], 50);
}

TEST_CASE(tm_stop_plan) {
  StopPlan p = plan_tm_stops(spec(false), {151645, 151643});
  CHECK_EQ(p.words.size(), size_t(2));
  CHECK_EQ(p.single_ids.size(), size_t(2));
  StopPlan q = plan_tm_stops(spec(true), {151645, 151643});
  CHECK(q.words.empty());
  CHECK(q.single_ids.empty());  // ignore_eos really leaves no id that can end the request
  std::vector<int> ids, offs;
  flatten_words({{1}, {2, 3}, {4}}, ids, offs);
  CHECK_EQ(ids.size(), size_t(4));
  CHECK_EQ(offs.size(), size_t(3));
  CHECK_EQ(offs[0], 1);
  CHECK_EQ(offs[1], 3);
  CHECK_EQ(offs[2], 4);
}

TEST_CASE(stop_suffix_matching_prefers_longest) {
  std::vector<std::vector<int32_t>> words = {{9}, {8, 9}, {7}};
  CHECK_EQ(match_stop_suffix({1, 8, 9}, words), 1);
  CHECK_EQ(match_stop_suffix({1, 2, 9}, words), 0);
  CHECK_EQ(match_stop_suffix({7}, words), 2);
  CHECK_EQ(match_stop_suffix({}, words), -1);
  CHECK_EQ(match_stop_suffix({1, 2}, words), -1);
}

TEST_CASE(trt_clamp_to_max_seq_len) {
  Clamp c = trt_clamp(20000, 1000, 20480, 20800, "engine config.json");
  CHECK_EQ(c.requested, 1000u);
  CHECK_EQ(c.effective, 800u);
  CHECK_EQ(c.limit_source, std::string("max_seq_len=20800 (engine config.json)"));
  Clamp d = trt_clamp(10000, 800, 20480, 21504, "engine config.json");
  CHECK_EQ(d.effective, 800u);
  CHECK(d.limit_source.empty());
  Clamp unknown = trt_clamp(10000, 800, 0, 0, "");
  CHECK_EQ(unknown.effective, 800u);
  CHECK_THROWS(trt_clamp(30000, 10, 20480, 40000, "x"), LMD_ERR_INVALID, "max_input_len=20480");
  CHECK_THROWS(trt_clamp(4096, 10, 0, 4096, "x"), LMD_ERR_INVALID, "no room");
}

TEST_CASE(tm_clamp_follows_turbomind_073_rule) {
  // prompt + max_new below session_len: untouched
  Clamp a = tm_clamp(10000, 1000, 21504, "session_len=21504 (lmdrive config)");
  CHECK_EQ(a.effective, 1000u);
  CHECK(a.limit_source.empty());
  // reaching session_len: limit becomes session_len - 1
  Clamp b = tm_clamp(1536, 1000, 2048, "session_len=2048 (workspace config.yaml)");
  CHECK_EQ(b.effective, 511u);
  CHECK(b.limit_source.find("session_len=2048") != std::string::npos);
  // exactly session_len: one token less than asked
  Clamp c = tm_clamp(1048, 1000, 2048, "s");
  CHECK_EQ(c.effective, 999u);
  CHECK_THROWS(tm_clamp(3000, 10, 2048, "s"), LMD_ERR_INVALID, "exceeds session_len=2048");
  CHECK_THROWS(tm_clamp(2047, 10, 2048, "s"), LMD_ERR_INVALID, "no room");
}

TEST_CASE(trt_finish_mapping) {
  StopPlan plan = plan_trt_stops(spec(false, {{50}, {60, 61}}), {151645, 151643});
  Clamp full{100, 100, ""};
  Clamp clamped{1000, 800, "max_seq_len=20800 (engine config.json)"};

  Finish eos = map_trt_finish(kTrtEndId, {5, 6}, plan, full, false);
  CHECK_EQ(eos.reason, int32_t(LMD_FINISH_EOS));
  CHECK_EQ(eos.stop_token, 151645);
  CHECK_EQ(eos.raw_status, 1);
  CHECK_EQ(eos.raw_text, std::string("END_ID"));

  Finish stop = map_trt_finish(kTrtStopWords, {5, 60, 61}, plan, full, false);
  CHECK_EQ(stop.reason, int32_t(LMD_FINISH_STOP));
  CHECK_EQ(stop.stop_sequence, 1);
  CHECK_EQ(stop.stop_token, 61);

  // the second EOS id travels as a stop word but is reported as EOS
  Finish eos2 = map_trt_finish(kTrtStopWords, {5, 151643}, plan, full, false);
  CHECK_EQ(eos2.reason, int32_t(LMD_FINISH_EOS));
  CHECK_EQ(eos2.stop_token, 151643);
  CHECK_EQ(eos2.stop_sequence, -1);

  std::vector<int32_t> eight_hundred(800, 7);
  Finish lim = map_trt_finish(kTrtLength, eight_hundred, plan, clamped, false);
  CHECK_EQ(lim.reason, int32_t(LMD_FINISH_LIMIT));
  CHECK_EQ(lim.limit_source, clamped.limit_source);
  std::vector<int32_t> hundred(100, 7);
  CHECK_EQ(map_trt_finish(kTrtLength, hundred, plan, full, false).reason, int32_t(LMD_FINISH_LENGTH));
  CHECK_EQ(map_trt_finish(kTrtTimedOut, {}, plan, full, false).reason, int32_t(LMD_FINISH_TIMEOUT));
  CHECK_EQ(map_trt_finish(kTrtCancelled, {}, plan, full, true).reason, int32_t(LMD_FINISH_CANCELLED));
  Finish odd = map_trt_finish(kTrtNotFinished, {}, plan, full, false);
  CHECK_EQ(odd.reason, int32_t(LMD_FINISH_ERROR));
  CHECK_EQ(odd.raw_text, std::string("NOT_FINISHED"));
}

TEST_CASE(tm_finish_inference) {
  std::vector<int> eos = {151645, 151643};
  RequestSpec on = spec(false, {{50}});
  RequestSpec off = spec(true, {{50}});
  StopPlan p_on = plan_tm_stops(on, eos);
  StopPlan p_off = plan_tm_stops(off, eos);
  Clamp full{100, 100, ""};

  Finish a = map_tm_finish(kTmFinish, {4, 151645}, p_on, eos, false, full, 3, 4096);
  CHECK_EQ(a.reason, int32_t(LMD_FINISH_EOS));
  CHECK_EQ(a.stop_token, 151645);
  CHECK_EQ(a.raw_text, std::string("kFinish"));

  // EOS sampled under ignore_eos is just a token: never an EOS finish
  std::vector<int32_t> hundred(99, 4);
  hundred.push_back(151645);
  Finish b = map_tm_finish(kTmFinish, hundred, p_off, eos, true, full, 3, 4096);
  CHECK_EQ(b.reason, int32_t(LMD_FINISH_LENGTH));

  Finish c = map_tm_finish(kTmFinish, {4, 50}, p_off, eos, true, full, 3, 4096);
  CHECK_EQ(c.reason, int32_t(LMD_FINISH_STOP));
  CHECK_EQ(c.stop_sequence, 0);

  // the session_len clamp: reached the clamped count
  Clamp clamped{1000, 511, "session_len=2048 (workspace config.yaml), less 1 (TurboMind 0.7.3 length limit)"};
  std::vector<int32_t> n511(511, 4);
  Finish d = map_tm_finish(kTmFinish, n511, p_off, eos, true, clamped, 1536, 2048);
  CHECK_EQ(d.reason, int32_t(LMD_FINISH_LIMIT));
  CHECK(d.limit_source.find("session_len=2048") != std::string::npos);

  // fewer than the clamp with no stop: KV-limited session_len, inferred
  std::vector<int32_t> n387(387, 4);
  Finish e = map_tm_finish(kTmFinish, n387, p_off, eos, true, Clamp{800, 800, ""}, 10000, 32768);
  CHECK_EQ(e.reason, int32_t(LMD_FINISH_LIMIT));
  CHECK(e.limit_source.find("KV-limited session_len") != std::string::npos);

  CHECK_EQ(map_tm_finish(kTmCancel, {}, p_on, eos, false, full, 3, 4096).reason, int32_t(LMD_FINISH_CANCELLED));
  Finish f = map_tm_finish(kTmFail, {}, p_on, eos, false, full, 3, 4096);
  CHECK_EQ(f.reason, int32_t(LMD_FINISH_ERROR));
  CHECK_EQ(f.raw_status, 5);
  CHECK_EQ(f.raw_text, std::string("kFail"));
  CHECK_EQ(map_tm_finish(kTmTooLong, {}, p_on, eos, false, full, 3, 4096).reason, int32_t(LMD_FINISH_LIMIT));
}

TEST_MAIN("shimcommon request")
