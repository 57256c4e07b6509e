// One created engine: its config, model shape, EOS set, limits and backend.
#pragma once

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

  // Checks every request against the model, then hands them all to the
  // scheduler at once (they enter the batch in the same step). Throws
  // Error(LMD_ERR_INVALID) naming the request at fault; nothing is started
  // then. How many streams may be open is the kit table's rule
  // (max_sequences()).
  std::vector<std::unique_ptr<Stream>> start(const std::vector<RequestSpec>& reqs);

  // Generations that may run at once.
  int max_sequences() const;

  // Wakes the scheduler (a stream's cancel flag was set).
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
};

}  // namespace lmdref
