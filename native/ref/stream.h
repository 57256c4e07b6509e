// One generation of the reference engine as the kit's table sees it: the
// kit's token queue and cancel flag (ShimStream), filled by the engine's
// scheduler through the sequence's link.
#pragma once

#include <memory>

#include "kit.h"
#include "lmdrive_shim/api.h"
#include "scheduler.h"

namespace lmdref {

class Engine;

class Stream : public lmdrive::shim::ShimStream, public SequenceSink {
 public:
  // The engine stays alive as long as the stream, even past destroy().
  Stream(std::shared_ptr<Engine> engine, const RequestSpec& req, const Clamp& clamp);
  // Cancels the generation and waits until the scheduler let go of it.
  ~Stream() override;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  const std::shared_ptr<SequenceLink>& link() const { return link_; }

  // The kit's side: cancel_requested is set; the scheduler is told.
  void request_cancel() noexcept override;
  void wait_engine_released() noexcept override { link_->wait_released(); }

  // The scheduler's side.
  void on_token(int32_t id, uint32_t index, int64_t t_ns, float logprob,
                const float* watch) override;
  void on_end(const SequenceEnd& end) override;

 private:
  std::shared_ptr<Engine> engine_;
  std::shared_ptr<SequenceLink> link_;
};

}  // namespace lmdref
