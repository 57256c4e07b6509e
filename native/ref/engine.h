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
#include "scheduler.h"

namespace lmdref {

class Stream;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Parses the config, checks host memory, loads weights. Throws Error.
  static std::shared_ptr<Engine> create(const char* config_json);
  ~Engine();

  void info(lmd_info* out) const;  // a full-size struct

  // Validates every request, then hands them all to the scheduler at once
  // (they enter the batch in the same step). Throws Error: INVALID naming
  // the request at fault, BUSY when fewer than n of max_sequences() streams
  // are free; nothing is started then.
  std::vector<std::shared_ptr<Stream>> start(const lmd_request* const* reqs, uint32_t n);

  // Generations that may be in flight at once (open streams).
  int max_sequences() const;

  // Ends every generation (cancelled) and stops the scheduler (destroy()).
  void shutdown();

  // Called by a stream when it is closed, and when its cancel flag is set.
  void stream_closed() { open_.fetch_sub(1); }
  void poke() { scheduler_->poke(); }

  const EngineConfig& config() const { return cfg_; }
  const ModelConfig& model() const { return model_; }
  Backend* backend() { return backend_.get(); }  // null in calibrate mode
  const std::vector<int32_t>& eos_ids() const { return eos_; }
  EngineLimits limits() const;


 private:
  Engine() = default;
  void start_scheduler();

  EngineConfig cfg_;
  ModelConfig model_;
  std::vector<int32_t> eos_;
  uint32_t max_seq_len_ = 0;
  std::string description_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Scheduler> scheduler_;
  std::atomic<int> open_{0};  // streams started and not yet closed
};

}  // namespace lmdref
