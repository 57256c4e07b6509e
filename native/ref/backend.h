// The compute interface every reference-engine backend implements. The
// generation loop, stop rules, sampler and loaders never see more than this,
// so a CUDA backend is a second implementation of Backend and nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "kit.h"
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

// One sequence's share of a batched step (Backend::step): n tokens at
// positions [pos, pos + n) of the sequence in `slot` (a prompt chunk, or the
// one token of a decode step), and what its last position hands back, if
// anything: a logits row on the host, or (chooses_greedy backends) the greedy
// choice and the logits of the n_watch ids in watch.
struct SeqStep {
  int slot = 0;
  int pos = 0;
  int n = 0;
  float* logits = nullptr;          // vocab floats
  GreedyChoice* choice = nullptr;
  const int32_t* watch = nullptr;
  int n_watch = 0;
  float* watch_logits = nullptr;    // n_watch floats
  bool emits() const { return logits || choice; }
};

// A step may stop early once every sequence in it was cancelled: it checks
// these flags between layers. Their caches are then unusable (the sequences
// end, cancelled).
struct StepCancel {
  const std::atomic<bool>* const* flags = nullptr;
  int n = 0;
  bool all_set() const {
    if (n == 0) return false;
    for (int i = 0; i < n; ++i)
      if (!flags[i]->load(std::memory_order_relaxed)) return false;
    return true;
  }
};

// Thrown by step() when one sequence cannot go on (its room in the KV cache
// ran out): the caller ends that sequence and runs the step again without it.
class SequenceError : public Error {
 public:
  SequenceError(int slot, const std::string& message)
      : Error(LMD_ERR_NOMEM, message), slot_(slot) {}
  int slot() const { return slot_; }

 private:
  int slot_;
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

  // Device time of the last forward or step in ns; -1 where the backend has no device clock.
  virtual int64_t last_device_ns() const { return -1; }

  // ---- Several sequences at once (continuous batching) ----
  // Each sequence keeps its own KV cache in a slot. The defaults run one
  // sequence at a time through forward() and forward_greedy() (whose cache
  // it then is); a batching backend overrides all four and keeps forward()'s
  // cache apart from its slots.

  // How many sequences the backend holds at once.
  virtual int max_sequences() const { return 1; }

  // Opens a sequence of at most `positions` positions (prompt + new tokens)
  // and returns its slot, or -1 when it does not fit until another sequence
  // closes. Throws Error when it could never fit.
  virtual int open_sequence(int positions);
  virtual void close_sequence(int slot);

  // Runs one step over every sequence in seqs: tokens holds their tokens one
  // sequence after the other (seqs[i].n each). Each sequence's result is
  // computed as if it ran alone. Returns false when cancel.all_set() was
  // seen; throws SequenceError for a sequence that cannot go on.
  virtual bool step(const int32_t* tokens, const SeqStep* seqs, int n_seqs,
                    const StepCancel& cancel);

 private:
  bool single_open_ = false;  // the default one-sequence slot
};

struct BackendOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";                    // activations
  WeightFormat weights = WeightFormat::Native;  // Linear weights (quantize.h)
  bool quantize_lm_head = false;
  int threads = 1;
  uint32_t max_seq_len = 0;  // the engine's length limit; bounds the KV cache
  int max_sequences = 1;     // sequences held at once (the engine's max_batch)
};

// Fails fast (before any weight is read) for a device or dtype this build cannot run.
void check_backend_options(const BackendOptions& opt);

// Builds the backend for opt.device and loads every weight from src.
std::unique_ptr<Backend> make_backend(const ModelConfig& m, const WeightSource& src,
                                      const BackendOptions& opt);

}  // namespace lmdref
