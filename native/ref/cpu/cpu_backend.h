// The CPU backend: fp32 weights in host memory, threads via Parallel.
#pragma once

#include <memory>

#include "backend.h"
#include "cpu/parallel.h"

namespace lmdref {

// min_work: Parallel's work per thread (tests pass 0 to split every loop).
std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& m, const WeightSource& src,
                                          int threads, uint32_t max_seq_len,
                                          double min_work = Parallel::kMinWork);

}  // namespace lmdref
