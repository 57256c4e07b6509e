#include "generation.h"

#include <algorithm>
#include <limits>
#include <new>
#include <optional>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "kit.h"
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
  const RequestSpec& g = stream.request();
  const Clamp& clamp = stream.clamp();
  const uint32_t vocab = engine.model().vocab;
  const int n_prompt = static_cast<int>(g.prompt.size());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  lmdrive::shim::ResultCore core;
  core.clamp = clamp;
  core.cached_prompt_tokens = 0;  // no prefix cache
  core.ignore_eos_applied = g.ignore_eos;
  StopDecision d;
  Backend* b = engine.backend();
  if (!b) core.detail = "calibrate mode: no model compute, token i is i mod vocab";

  try {
    StopRules rules(engine.eos_ids(), g.ignore_eos, g.min_new_tokens, g.stops, clamp.requested,
                    clamp.effective);
    core.stop_ids = rules.single_stop_ids();
    std::vector<int32_t> out;
    out.reserve(std::min<uint32_t>(clamp.effective, 1u << 20));
    std::optional<NextToken> next;
    if (b) next.emplace(*b, g, vocab);
    std::vector<float> watch(g.watch_ids.size(), nan);

    bool running = !stream.cancelled();
    if (running && b) {
      b->reset();
      running = next->forward(g.prompt.data(), n_prompt, 0, stream.cancel_flag());
      add_device_time(b, &core.device_prefill_ns);
    }
    if (!running) d.finish = LMD_FINISH_CANCELLED;

    while (d.finish == LMD_FINISH_NONE) {
      const uint32_t index = static_cast<uint32_t>(out.size());
      const int32_t id = b ? next->choose() : static_cast<int32_t>(index % vocab);
      const int64_t t = now_ns();  // the token is known on the host from here on
      const float logprob = b ? next->report(id, watch.data()) : nan;
      stream.queue.push(&id, &logprob, watch.data(), 1, t);
      out.push_back(id);

      d = rules.check(out, stream.cancelled());
      if (d.finish != LMD_FINISH_NONE) break;
      if (b) {
        if (!next->forward(&id, 1, n_prompt + static_cast<int>(index), stream.cancel_flag()))
          d.finish = LMD_FINISH_CANCELLED;
        add_device_time(b, &core.device_decode_ns);
      }
    }
  } catch (const std::bad_alloc&) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    core.detail = "out of host memory during generation";
  } catch (const std::exception& e) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    core.detail = e.what();
  } catch (...) {
    d = StopDecision{LMD_FINISH_ERROR, -1, -1};
    core.detail = "unknown failure during generation";
  }

  core.finish.reason = d.finish;
  core.finish.raw_status = d.finish;
  core.finish.raw_text = finish_word(d.finish);
  core.finish.stop_token = d.stop_token;
  core.finish.stop_sequence = d.stop_sequence;
  stream.queue.complete(std::move(core));
}

}  // namespace lmdref
