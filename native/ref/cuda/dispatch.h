// How the core library reaches the CUDA plugin (implemented in backend.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend.h"

namespace lmdref {

// What the plugin needs to know about where the weights come from: random
// weights are generated on the GPUs from the spec, never on the host.
struct CudaWeightOrigin {
  bool random = false;
  uint64_t seed = 0;
};

// True for "cuda", "cuda:N" and "cuda:N,M,…".
bool is_cuda_device(const std::string& device);

// Loads liblmdrive_ref_cuda.so (once) and builds the backend on the GPUs that
// opt.device names. Throws Error (UNSUPPORTED when the plugin is missing).
std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& m, const WeightSource& src,
                                           const BackendOptions& opt,
                                           const CudaWeightOrigin& origin);

}  // namespace lmdref
