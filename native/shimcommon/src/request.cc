#include "lmdrive_shim/request.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "lmdrive_shim/util.h"

namespace lmdrive::shim {
namespace {

bool contains(const std::vector<int32_t>& v, int32_t x) {
  for (int32_t y : v) {
    if (y == x) return true;
  }
  return false;
}

void add_single(std::vector<int32_t>& v, int32_t x) {
  if (!contains(v, x)) v.push_back(x);
}
}  // namespace

RequestSpec copy_request(const lmd_request* req) {
  RequestSpec s;
  s.t_submit_ns = now_ns();
  if (!req) invalid("request is NULL");
  // A smaller struct from an older caller: the missing fields read as zero.
  lmd_request r;
  std::memset(&r, 0, sizeof r);
  size_t n = req->struct_size;
  const size_t need = offsetof(lmd_request, max_new_tokens) + sizeof r.max_new_tokens;
  if (n < need) invalid(strf("request struct_size %zu is too small (need at least %zu)", n, need));
  if (n > sizeof r) n = sizeof r;
  std::memcpy(&r, req, n);
  if (n < offsetof(lmd_request, top_p) + sizeof(float)) r.top_p = 1.f;

  if (r.n_prompt == 0) invalid("n_prompt must be at least 1: the request has an empty prompt");
  if (!r.prompt) invalid("prompt is NULL");
  if (r.max_new_tokens == 0) invalid("max_new_tokens must be at least 1");
  s.prompt.assign(r.prompt, r.prompt + r.n_prompt);
  for (uint32_t i = 0; i < r.n_prompt; ++i) {
    if (s.prompt[i] < 0) invalid(strf("prompt[%u] is a negative token id (%d)", i, s.prompt[i]));
  }
  s.max_new_tokens = r.max_new_tokens;
  s.min_new_tokens = r.min_new_tokens;
  if (s.min_new_tokens > s.max_new_tokens) {
    invalid(strf("min_new_tokens (%u) exceeds max_new_tokens (%u)", s.min_new_tokens, s.max_new_tokens));
  }
  s.ignore_eos = r.ignore_eos != 0;

  if (r.n_stop > 0) {
    if (!r.stop_tokens || !r.stop_ends) invalid("n_stop > 0 but stop_tokens or stop_ends is NULL");
    uint32_t begin = 0;
    for (uint32_t i = 0; i < r.n_stop; ++i) {
      uint32_t end = r.stop_ends[i];
      if (end <= begin) {
        invalid(strf("stop sequence %u is empty or stop_ends is not increasing (stop_ends must increase strictly)", i));
      }
      std::vector<int32_t> seq(r.stop_tokens + begin, r.stop_tokens + end);
      for (int32_t id : seq) {
        if (id < 0) invalid(strf("stop sequence %u holds a negative id (%d)", i, id));
      }
      s.stops.push_back(std::move(seq));
      begin = end;
    }
  }
  if (r.n_watch > kMaxWatch) invalid(strf("n_watch %u exceeds %u", r.n_watch, kMaxWatch));
  if (r.n_watch > 0) {
    if (!r.watch_ids) invalid("n_watch > 0 but watch_ids is NULL");
    s.watch_ids.assign(r.watch_ids, r.watch_ids + r.n_watch);
    for (int32_t id : s.watch_ids) {
      if (id < 0) invalid(strf("watch id %d is negative", id));
    }
  }
  s.top_k = r.top_k;
  if (!(r.temperature >= 0.f) || !std::isfinite(r.temperature)) {
    invalid("temperature must be a finite number >= 0 (0: greedy)");
  }
  s.temperature = r.temperature;
  if (!(r.top_p > 0.f && r.top_p <= 1.f)) invalid("top_p must be in (0, 1] (1: no nucleus limit)");
  s.top_p = r.top_p;
  s.seed = r.seed;
  s.want_logprobs = r.want_logprobs != 0;
  return s;
}

StopPlan plan_trt_stops(const RequestSpec& r, const std::vector<int>& eos_ids) {
  StopPlan p;
  p.words = r.stops;
  p.n_user_words = r.stops.size();
  if (!r.ignore_eos && !eos_ids.empty()) {
    p.end_id = eos_ids[0];
    add_single(p.single_ids, p.end_id);
    for (size_t i = 1; i < eos_ids.size(); ++i) {
      if (eos_ids[i] == p.end_id) continue;
      p.words.push_back({eos_ids[i]});
    }
  }
  for (const auto& w : p.words) {
    if (w.size() == 1) add_single(p.single_ids, w[0]);
  }
  return p;
}

StopPlan plan_tm_stops(const RequestSpec& r, const std::vector<int>& eos_ids) {
  StopPlan p;
  p.words = r.stops;
  p.n_user_words = r.stops.size();
  if (!r.ignore_eos) {
    for (int id : eos_ids) p.words.push_back({id});
  }
  for (const auto& w : p.words) {
    if (w.size() == 1) add_single(p.single_ids, w[0]);
  }
  return p;
}

void flatten_words(const std::vector<std::vector<int32_t>>& words, std::vector<int>& ids, std::vector<int>& offsets) {
  ids.clear();
  offsets.clear();
  for (const auto& w : words) {
    ids.insert(ids.end(), w.begin(), w.end());
    offsets.push_back(static_cast<int>(ids.size()));
  }
}

int match_stop_suffix(const std::vector<int32_t>& generated, const std::vector<std::vector<int32_t>>& words) {
  int best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const auto& w = words[i];
    if (w.empty() || w.size() > generated.size() || w.size() <= best_len) continue;
    if (std::equal(w.begin(), w.end(), generated.end() - static_cast<ptrdiff_t>(w.size()))) {
      best = static_cast<int>(i);
      best_len = w.size();
    }
  }
  return best;
}

Clamp seq_len_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t max_seq_len, const std::string& seq_len_source) {
  Clamp c;
  c.requested = max_new;
  c.effective = max_new;
  if (max_seq_len == 0) return c;
  if (prompt_len >= max_seq_len) {
    invalid(strf("prompt of %u tokens leaves no room under max_seq_len=%u", prompt_len, max_seq_len));
  }
  uint32_t room = max_seq_len - prompt_len;
  if (room < max_new) {
    c.effective = room;
    c.limit_source = strf("max_seq_len=%u (%s)", max_seq_len, seq_len_source.c_str());
  }
  return c;
}

Clamp trt_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t max_input_len, uint32_t max_seq_len,
                const std::string& seq_len_source) {
  if (max_input_len > 0 && prompt_len > max_input_len) {
    invalid(strf("prompt of %u tokens exceeds the engine's max_input_len=%u; rebuild the engine with a larger "
             "--max_input_len",
             prompt_len, max_input_len));
  }
  return seq_len_clamp(prompt_len, max_new, max_seq_len, seq_len_source);
}

Clamp tm_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t session_len, const std::string& session_source) {
  Clamp c;
  c.requested = max_new;
  c.effective = max_new;
  if (session_len == 0) return c;
  if (prompt_len > session_len) {
    invalid(strf("prompt of %u tokens exceeds session_len=%u; raise \"session_len\"", prompt_len, session_len));
  }
  uint64_t limit = static_cast<uint64_t>(prompt_len) + max_new;
  if (limit >= session_len) {
    uint32_t room = session_len - 1 > prompt_len ? session_len - 1 - prompt_len : 0;
    if (room == 0) {
      invalid(strf("prompt of %u tokens leaves no room under session_len=%u (TurboMind stops at session_len-1)",
               prompt_len, session_len));
    }
    if (room < max_new) {
      c.effective = room;
      c.limit_source = session_source + ", less 1 (TurboMind 0.7.3 length limit)";
    }
  }
  return c;
}

const char* trt_reason_name(int reason) {
  switch (reason) {
    case kTrtNotFinished: return "NOT_FINISHED";
    case kTrtEndId: return "END_ID";
    case kTrtStopWords: return "STOP_WORDS";
    case kTrtLength: return "LENGTH";
    case kTrtTimedOut: return "TIMED_OUT";
    case kTrtCancelled: return "CANCELLED";
    default: return "UNKNOWN";
  }
}

namespace {

// Fills stop_token/stop_sequence for a stop-word end and decides whether the
// matched word is one of the caller's sequences or an EOS id the shim added.
void attribute_stop(Finish& f, const std::vector<int32_t>& generated, const StopPlan& plan) {
  int w = match_stop_suffix(generated, plan.words);
  if (w < 0) {
    f.reason = LMD_FINISH_STOP;
    f.note = "engine reported a stop word but none matches the output tail";
    return;
  }
  f.stop_token = generated.back();
  if (static_cast<size_t>(w) < plan.n_user_words) {
    f.reason = LMD_FINISH_STOP;
    f.stop_sequence = w;
  } else {
    f.reason = LMD_FINISH_EOS;  // an extra EOS id passed as a one-token stop word
  }
}

void length_or_limit(Finish& f, uint32_t n_out, const Clamp& clamp) {
  if (clamp.effective < clamp.requested && n_out >= clamp.effective) {
    f.reason = LMD_FINISH_LIMIT;
    f.limit_source = clamp.limit_source;
  } else {
    f.reason = LMD_FINISH_LENGTH;
  }
}

}  // namespace

Finish map_trt_finish(int reason, const std::vector<int32_t>& generated, const StopPlan& plan, const Clamp& clamp,
                      bool cancel_requested) {
  Finish f;
  f.raw_status = reason;
  f.raw_text = trt_reason_name(reason);
  const uint32_t n_out = static_cast<uint32_t>(generated.size());
  switch (reason) {
    case kTrtEndId:
      f.reason = LMD_FINISH_EOS;
      f.stop_token = plan.end_id;
      break;
    case kTrtStopWords: attribute_stop(f, generated, plan); break;
    case kTrtLength: length_or_limit(f, n_out, clamp); break;
    case kTrtTimedOut: f.reason = LMD_FINISH_TIMEOUT; break;
    case kTrtCancelled: f.reason = LMD_FINISH_CANCELLED; break;
    default:
      if (cancel_requested) {
        f.reason = LMD_FINISH_CANCELLED;
      } else {
        f.reason = LMD_FINISH_ERROR;
        f.note = strf("final result carried finish reason %d (%s)", reason, trt_reason_name(reason));
      }
      break;
  }
  if (f.reason == LMD_FINISH_LENGTH && n_out < clamp.effective) {
    f.note = strf("LENGTH after %u of %u tokens", n_out, clamp.effective);
  }
  return f;
}

const char* tm_status_name(int status) {
  switch (status) {
    case kTmOk: return "kOk";
    case kTmInvalid: return "kInvalid";
    case kTmConflict: return "kConflict";
    case kTmBusy: return "kBusy";
    case kTmInactive: return "kInactive";
    case kTmFail: return "kFail";
    case kTmTooLong: return "kTooLong";
    case kTmFinish: return "kFinish";
    case kTmCancel: return "kCancel";
    default: return "unknown";
  }
}

Finish map_tm_finish(int status, const std::vector<int32_t>& generated, const StopPlan& plan,
                     const std::vector<int>& eos_ids, bool ignore_eos, const Clamp& clamp, uint32_t prompt_len,
                     uint32_t session_len) {
  Finish f;
  f.raw_status = status;
  f.raw_text = tm_status_name(status);
  const uint32_t n_out = static_cast<uint32_t>(generated.size());
  if (status == kTmCancel) {
    f.reason = LMD_FINISH_CANCELLED;
    return f;
  }
  if (status == kTmTooLong) {
    // The shim rejects prompts over the configured session_len before
    // submitting, so this means TurboMind shortened session_len at start-up.
    f.reason = LMD_FINISH_LIMIT;
    f.limit_source = strf("session_len below the configured %u (TurboMind truncated it to fit the KV cache; "
                          "see its 'No enough blocks' warning)",
                          session_len);
    return f;
  }
  if (status != kTmFinish) {
    f.reason = LMD_FINISH_ERROR;
    f.note = strf("TurboMind ended the request with status %d (%s)", status, tm_status_name(status));
    return f;
  }
  // kFinish: infer why (TurboMind reports the same status for all of these).
  if (!generated.empty()) {
    int32_t last = generated.back();
    if (!ignore_eos) {
      for (int e : eos_ids) {
        if (e == last) {
          f.reason = LMD_FINISH_EOS;
          f.stop_token = last;
          return f;
        }
      }
    }
    int w = match_stop_suffix(generated, plan.words);
    if (w >= 0 && static_cast<size_t>(w) < plan.n_user_words) {
      f.reason = LMD_FINISH_STOP;
      f.stop_token = last;
      f.stop_sequence = w;
      return f;
    }
  }
  if (n_out >= clamp.effective) {
    length_or_limit(f, n_out, clamp);
    return f;
  }
  // Fewer tokens than the clamp allows, and no stop matched: the only
  // remaining length cause is a session_len that TurboMind lowered at start-up
  // to what the KV cache holds (a multiple of cache_block_seq_len).
  f.reason = LMD_FINISH_LIMIT;
  f.limit_source = strf("KV-limited session_len (inferred: prompt %u + output %u = %u < configured session_len %u)",
                        prompt_len, n_out, prompt_len + n_out, session_len);
  return f;
}

}  // namespace lmdrive::shim
