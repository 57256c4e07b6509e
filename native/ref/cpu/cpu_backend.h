// The CPU backend: fp32 weights in host memory, threads via Parallel.
#pragma once

#include <memory>

#include "backend.h"

namespace lmdref {

// max_sequences: how many sequences step() holds at once (their KV caches
// grow on demand, so an idle slot costs nothing).
std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& m, const WeightSource& src,
                                          int threads, uint32_t max_seq_len,
                                          int max_sequences = 1);

}  // namespace lmdref
