#include "stream.h"

#include "engine.h"

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

}  // namespace

Stream::Stream(std::shared_ptr<Engine> engine, const RequestSpec& req, const Clamp& clamp)
    : ShimStream(req), engine_(std::move(engine)) {
  link_ = std::make_shared<SequenceLink>(req, clamp, this);
}

Stream::~Stream() {
  cancel_requested.store(true);
  request_cancel();
  wait_engine_released();
}

void Stream::request_cancel() noexcept {
  link_->cancel.store(true);
  engine_->poke();
}

void Stream::on_token(int32_t id, uint32_t, int64_t t_ns, float logprob, const float* watch) {
  queue.push(&id, &logprob, watch, 1, t_ns);
}

void Stream::on_end(const SequenceEnd& e) {
  lmdrive::shim::ResultCore core;
  core.clamp = link_->clamp;
  core.cached_prompt_tokens = 0;  // no prefix cache
  core.ignore_eos_applied = link_->req.ignore_eos;
  core.stop_ids = e.single_stop_ids;
  core.device_prefill_ns = e.device_prefill_ns;
  core.device_decode_ns = e.device_decode_ns;
  core.detail = e.detail;
  core.finish.reason = e.decision.finish;
  core.finish.raw_status = e.decision.finish;
  core.finish.raw_text = finish_word(e.decision.finish);
  core.finish.stop_token = e.decision.stop_token;
  core.finish.stop_sequence = e.decision.stop_sequence;
  core.scheduled_ns = e.t_scheduled_ns;
  core.mean_batch = e.mean_batch;
  core.max_batch = e.max_batch;
  queue.complete(std::move(core));
}

}  // namespace lmdref
