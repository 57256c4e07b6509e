// The CPU backend: fp32 activations in host memory, threads via Parallel;
// Linear weights in fp32, or int8 with per-channel scales (quantize.h).
#pragma once

#include <memory>

#include "backend.h"
#include "cpu/parallel.h"

namespace lmdref {

struct CpuWeightOptions {
  bool int8 = false;          // q/k/v/o and gate/up/down weights in int8
  bool int8_lm_head = false;  // lm_head too (the embedding stays fp32)
};

// min_work: Parallel's work per thread (tests pass 0 to split every loop).
// max_sequences: how many sequences step() holds at once (their KV caches
// grow on demand, so an idle slot costs nothing).
std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& m, const WeightSource& src,
                                          int threads, uint32_t max_seq_len,
                                          double min_work = Parallel::kMinWork,
                                          const CpuWeightOptions& w = CpuWeightOptions{},
                                          int max_sequences = 1);

}  // namespace lmdref
