// The compute interface every reference-engine backend implements. The
// generation loop, stop rules, sampler and loaders never see more than this,
// so a CUDA backend is a second implementation of Backend and nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "model_config.h"
#include "quantize.h"
#include "weight_source.h"

namespace lmdref {

// The greedy choice of one position, made where the logits are.
struct GreedyChoice {
  int32_t id = -1;         // the first index of the largest logit
  float logit = 0;         // logits[id]
  double log_sum_exp = 0;  // log(sum(exp(logits))) over the vocabulary
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;   // info().backend, e.g. "ref-cpu"
  // info().dtype: the compute type ("fp32", "fp16"), or weights/activations
  // when the Linear weights are quantized ("int8/fp32", "fp8/bf16").
  virtual const char* dtype() const = 0;
  virtual uint32_t n_devices() const { return 0; }

  // Runs the model over tokens at positions [start_pos, start_pos + n),
  // extending the KV cache, and writes the logits of the last n_logits
  // positions (n_logits × vocab floats, in position order). Returns false as
  // soon as *cancel is seen set (checked between layers); the cache is then
  // unusable until reset().
  virtual bool forward(const int32_t* tokens, int n, int start_pos, int n_logits, float* logits,
                       const std::atomic<bool>* cancel) = 0;

  // Backends whose logits live on a device can make the greedy choice there,
  // so that a few bytes cross to the host each step instead of the whole row.
  virtual bool chooses_greedy() const { return false; }

  // forward() with n_logits = 1 that hands back the greedy choice and the
  // logits of the n_watch ids in watch (into watch_logits) instead of the row.
  // Only called when chooses_greedy().
  virtual bool forward_greedy(const int32_t* tokens, int n, int start_pos, const int32_t* watch,
                              int n_watch, float* watch_logits, GreedyChoice* choice,
                              const std::atomic<bool>* cancel) {
    (void)tokens, (void)n, (void)start_pos, (void)watch, (void)n_watch, (void)watch_logits,
        (void)choice, (void)cancel;
    return false;
  }

  // Forgets every cached position (no prefix reuse between generations).
  virtual void reset() = 0;

  // Device time of the last forward in ns; -1 where the backend has no device clock.
  virtual int64_t last_device_ns() const { return -1; }
};

struct BackendOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";                    // activations
  WeightFormat weights = WeightFormat::Native;  // Linear weights (quantize.h)
  bool quantize_lm_head = false;
  int threads = 1;
  uint32_t max_seq_len = 0;  // the engine's length limit; bounds the KV cache
};

// Fails fast (before any weight is read) for a device or dtype this build cannot run.
void check_backend_options(const BackendOptions& opt);

// Builds the backend for opt.device and loads every weight from src.
std::unique_ptr<Backend> make_backend(const ModelConfig& m, const WeightSource& src,
                                      const BackendOptions& opt);

}  // namespace lmdref
