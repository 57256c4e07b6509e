// An owned copy of an lmd_request, the stop plan each engine is given, the
// max_new_tokens clamp each engine applies, and the mapping from the engine's
// own end status to an LMD_FINISH_* reason. All engine-independent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lmdrive.h"

namespace lmdrive::shim {

struct RequestSpec {
  int64_t t_submit_ns = -1;  // now_ns() when copy_request() was entered: start() was called
  std::vector<int32_t> prompt;
  uint32_t max_new_tokens = 0;
  uint32_t min_new_tokens = 0;
  bool ignore_eos = false;
  std::vector<std::vector<int32_t>> stops;  // stop sequences, in the caller's order
  std::vector<int32_t> watch_ids;
  uint32_t top_k = 0;
  float temperature = 0.f;
  float top_p = 1.f;
  uint64_t seed = 0;
  bool want_logprobs = false;
};

// The most watched ids a request may name.
constexpr uint32_t kMaxWatch = 4096;

// Copies and validates a caller's request, honouring its struct_size: every
// check that needs no engine (ids are non-negative, stop_ends increase,
// sampling parameters in range). Checks against the vocabulary are the
// engine's. Throws ShimError(LMD_ERR_INVALID) with the reason.
RequestSpec copy_request(const lmd_request* req);

// What a request's stop conditions become for one engine.
struct StopPlan {
  // TensorRT-LLM: the single endId (-1: none, which is how ignore_eos is
  // expressed to the Executor). Unused for TurboMind.
  int32_t end_id = -1;
  // Stop words handed to the engine: the caller's sequences first (same
  // indices), then each extra EOS id as a one-token word.
  std::vector<std::vector<int32_t>> words;
  size_t n_user_words = 0;
  // Every single id that can end the request as passed to the engine
  // (end_id, one-token words). This is what lmd_result.stop_ids reports.
  std::vector<int32_t> single_ids;
};

// TensorRT-LLM has one endId: the first EOS id is the endId, further EOS ids
// become one-token stop words; with ignore_eos none of them is passed.
StopPlan plan_trt_stops(const RequestSpec& r, const std::vector<int>& eos_ids);
// TurboMind has no end id: EOS ids are one-token stop words unless ignore_eos.
StopPlan plan_tm_stops(const RequestSpec& r, const std::vector<int>& eos_ids);

// Flattens stop words into TurboMind's (ids, cumulative end offsets) pair.
void flatten_words(const std::vector<std::vector<int32_t>>& words, std::vector<int>& ids,
                   std::vector<int>& offsets);

// Index of the stop word that the generated tokens end with, or -1. The
// longest match wins when several do.
int match_stop_suffix(const std::vector<int32_t>& generated, const std::vector<std::vector<int32_t>>& words);

// The max_new_tokens an engine will really honour.
struct Clamp {
  uint32_t requested = 0;
  uint32_t effective = 0;
  std::string limit_source;  // empty when no limit applied
};

// prompt + max_new <= max_seq_len (0: no limit known): the effective budget,
// with limit_source "max_seq_len=N (<seq_len_source>)" when it is lower than
// asked. Throws INVALID when the prompt leaves no room at all.
Clamp seq_len_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t max_seq_len, const std::string& seq_len_source);

// TensorRT-LLM (LlmRequest validation): the prompt must fit max_input_len,
// then seq_len_clamp. 0 means "unknown".
Clamp trt_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t max_input_len, uint32_t max_seq_len,
                const std::string& seq_len_source);

// TurboMind 0.7.3 (LlamaBatch::ProcessInferRequests): the sequence limit is
// prompt + max_new, lowered to session_len - 1 when it reaches session_len.
// A prompt longer than session_len is rejected by the engine (kTooLong).
Clamp tm_clamp(uint32_t prompt_len, uint32_t max_new, uint32_t session_len, const std::string& session_source);

// The outcome of one generation in lmdrive's terms.
struct Finish {
  int32_t reason = LMD_FINISH_NONE;
  int32_t raw_status = -1;
  std::string raw_text;
  int32_t stop_token = -1;
  int32_t stop_sequence = -1;
  std::string limit_source;  // when reason is LIMIT (or the clamp's source)
  std::string note;          // goes to lmd_result.detail
};

// TensorRT-LLM executor::FinishReason values (types.h).
enum TrtFinishReason { kTrtNotFinished = 0, kTrtEndId = 1, kTrtStopWords = 2, kTrtLength = 3, kTrtTimedOut = 4, kTrtCancelled = 5 };
const char* trt_reason_name(int reason);
Finish map_trt_finish(int reason, const std::vector<int32_t>& generated, const StopPlan& plan, const Clamp& clamp,
                      bool cancel_requested);

// TurboMind 0.7.3 Request status codes (engine/request.h).
enum TmStatus { kTmOk = 0, kTmInvalid = 1, kTmConflict = 2, kTmBusy = 3, kTmInactive = 4, kTmFail = 5, kTmTooLong = 6, kTmFinish = 7, kTmCancel = 8 };
const char* tm_status_name(int status);
// kFinish says nothing about why; the reason is inferred, in this order, from
// the last token (an EOS id), the caller's stop words and the clamp. Fewer
// tokens than the clamp allows with no stop matched means TurboMind lowered
// session_len at start-up to what its KV cache holds (docs/engines.md,
// "Finish reasons").
Finish map_tm_finish(int status, const std::vector<int32_t>& generated, const StopPlan& plan,
                     const std::vector<int>& eos_ids, bool ignore_eos, const Clamp& clamp, uint32_t prompt_len,
                     uint32_t session_len);

}  // namespace lmdrive::shim
