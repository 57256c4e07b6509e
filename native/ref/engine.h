// One created engine: its config, model shape, EOS set, limits and backend.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "engine_config.h"
#include "lmdrive.h"
#include "model_config.h"
#include "request.h"

namespace lmdref {

class Stream;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Parses the config, checks host memory, loads weights. Throws Error.
  static std::shared_ptr<Engine> create(const char* config_json);
  ~Engine();

  void info(lmd_info* out) const;  // a full-size struct

  // Validates the request and starts its worker. Throws Error (INVALID, BUSY).
  std::shared_ptr<Stream> start(const lmd_request* req);

  // Cancels and waits for a running stream, if any (destroy()).
  void stop_active();

  const EngineConfig& config() const { return cfg_; }
  const ModelConfig& model() const { return model_; }
  Backend* backend() { return backend_.get(); }  // null in calibrate mode
  const std::vector<int32_t>& eos_ids() const { return eos_; }
  EngineLimits limits() const;

  // Called by the worker when its generation ends.
  void release() { busy_.store(false); }

 private:
  Engine() = default;

  EngineConfig cfg_;
  ModelConfig model_;
  std::vector<int32_t> eos_;
  uint32_t max_seq_len_ = 0;
  std::string description_;
  std::unique_ptr<Backend> backend_;
  std::atomic<bool> busy_{false};
  std::weak_ptr<Stream> active_;
};

}  // namespace lmdref
