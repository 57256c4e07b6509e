// The CPU backend: fp32 weights in host memory, threads via Parallel.
#pragma once

#include <memory>

#include "backend.h"

namespace lmdref {

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& m, const WeightSource& src,
                                          int threads, uint32_t max_seq_len);

}  // namespace lmdref
