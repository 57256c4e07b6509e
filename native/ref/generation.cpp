#include "generation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <vector>

#include "backend.h"
#include "clock.h"
#include "engine.h"
#include "next_token.h"
#include "stop_rules.h"
#include "stream.h"

namespace lmdref {

namespace {

const char* finish_word(int32_t f) {
  switch (f) {
    case LMD_FINISH_EOS: return "eos";
    case LMD_FINISH_STOP: return "stop";
    case LMD_FINISH_LENGTH: return "length";
    case LMD_FINISH_LIMIT: return "limit";
    case LMD_FINISH_CANCELLED: return "cancelled";
    case LMD_FINISH_TIMEOUT: return "timeout";
    case LMD_FINISH_ERROR: return "error";
    default: return "running";
  }
}

// Adds a forward's device time to *sum; stays -1 while the backend reports none.
void add_device_time(const Backend* b, int64_t* sum) {
  const int64_t t = b->last_device_ns();
  if (t < 0) return;
  *sum = (*sum < 0 ? 0 : *sum) + t;
}

}  // namespace

void run_generation(Engine& engine, Stream& stream) noexcept {
  const GenerationSpec& g = stream.spec();
  const uint32_t vocab = engine.model().vocab;
  const int n_prompt = static_cast<int>(g.prompt.size());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  StopRules rules(engine.eos_ids(), g.ignore_eos, g.min_new, g.stops, g.max_new_requested,
                  g.max_new_effective);

  std::vector<int32_t> out;
  StopDecision d;
  std::string detail;
  int64_t t_first = -1, t_last = -1, dev_prefill = -1, dev_decode = -1;
  Backend* b = engine.backend();
  if (!b) detail = "calibrate mode: no model compute, token i is i mod vocab";

  try {
    out.reserve(std::min<uint32_t>(g.max_new_effective, 1u << 20));
    std::optional<NextToken> next;
    if (b) next.emplace(*b, g, vocab);
    std::vector<float> watch(g.watch.size(), nan);

    bool running = !stream.cancelled();
    if (running && b) {
      b->reset();
      running = next->forward(g.prompt.data(), n_prompt, 0, stream.cancel_flag());
      add_device_time(b, &dev_prefill);
    }
    if (!running) d.finish = LMD_FINISH_CANCELLED;

    while (d.finish == LMD_FINISH_NONE) {
      const uint32_t index = static_cast<uint32_t>(out.size());
      const int32_t id = b ? next->choose() : static_cast<int32_t>(index % vocab);
      const int64_t t = now_ns();  // the token is known on the host from here on
      const float logprob = b ? next->report(id, watch.data()) : nan;
      stream.push(id, index, t, logprob, watch.data());
      if (t_first < 0) t_first = t;
      t_last = t;
      out.push_back(id);

      d = rules.check(out, stream.cancelled());
      if (d.finish != LMD_FINISH_NONE) break;
      if (b) {
        if (!next->forward(&id, 1, n_prompt + static_cast<int>(index), stream.cancel_flag()))
          d.finish = LMD_FINISH_CANCELLED;
        add_device_time(b, &dev_decode);
      }
    }
  } catch (const std::bad_alloc&) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    detail = "out of host memory during generation";
  } catch (const std::exception& e) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    detail = e.what();
  } catch (...) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    detail = "unknown failure during generation";
  }

  lmd_result r;
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.finish_reason = d.finish;
  r.raw_status = d.finish;
  r.prompt_tokens = static_cast<uint32_t>(n_prompt);
  r.output_tokens = static_cast<uint32_t>(out.size());
  r.cached_prompt_tokens = 0;
  r.max_new_requested = g.max_new_requested;
  r.max_new_effective = g.max_new_effective;
  r.stop_token = d.stop_token;
  r.stop_sequence = d.stop_sequence;
  r.t_submit_ns = stream.t_submit();
  r.t_first_ns = t_first;
  r.t_last_ns = t_last;
  r.device_prefill_ns = dev_prefill;
  r.device_decode_ns = dev_decode;
  r.engine_first_ns = -1;
  r.engine_last_ns = -1;
  r.ignore_eos_applied = g.ignore_eos ? 1 : 0;
  const std::vector<int32_t> ids = rules.single_stop_ids();
  r.n_stop_ids = static_cast<uint32_t>(std::min<size_t>(ids.size(), LMD_MAX_IDS));
  std::copy_n(ids.begin(), r.n_stop_ids, r.stop_ids);
  std::snprintf(r.raw_status_text, sizeof r.raw_status_text, "%s", finish_word(d.finish));
  std::snprintf(r.limit_source, sizeof r.limit_source, "%s", g.limit_source.c_str());
  std::snprintf(r.detail, sizeof r.detail, "%s", detail.c_str());

  // Free the engine before publishing "done", so a caller that saw done can start again.
  engine.release();
  r.t_done_ns = now_ns();
  stream.finish(r);
}

}  // namespace lmdref
