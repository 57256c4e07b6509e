#include "stream.h"

#include "engine.h"
#include "generation.h"

namespace lmdref {

Stream::Stream(std::shared_ptr<Engine> engine, const RequestSpec& req, const Clamp& clamp)
    : ShimStream(req), engine_(std::move(engine)), req_(req), clamp_(clamp) {}

Stream::~Stream() {
  cancel_requested.store(true);
  wait_engine_released();
}

void Stream::launch() {
  worker_ = std::thread([this] { run_generation(*engine_, *this); });
}

void Stream::wait_engine_released() noexcept {
  std::lock_guard<std::mutex> lk(join_m_);
  if (worker_.joinable()) worker_.join();
}

}  // namespace lmdref
