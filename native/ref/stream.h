// One generation of the reference engine as the kit's table sees it: the
// kit's token queue and cancel flag (ShimStream), filled by a worker thread
// that runs the generation loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "kit.h"
#include "lmdrive_shim/api.h"

namespace lmdref {

class Engine;

class Stream : public lmdrive::shim::ShimStream {
 public:
  // The engine stays alive as long as the stream, even past destroy().
  Stream(std::shared_ptr<Engine> engine, const RequestSpec& req, const Clamp& clamp);
  ~Stream() override;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void launch();  // starts the worker thread

  // The kit's cancel flag is all the worker needs.
  void request_cancel() noexcept override {}
  // Joins the worker; safe from several threads and more than once.
  void wait_engine_released() noexcept override;

  // Worker side.
  const RequestSpec& request() const { return req_; }
  const Clamp& clamp() const { return clamp_; }
  const std::atomic<bool>* cancel_flag() const { return &cancel_requested; }
  bool cancelled() const { return cancel_requested.load(); }

 private:
  std::shared_ptr<Engine> engine_;
  RequestSpec req_;
  Clamp clamp_;
  std::mutex join_m_;
  std::thread worker_;
};

}  // namespace lmdref
