// Where a backend reads weights from: random weights or a checkpoint. Every
// backend converts from the same fp32 view, so loaders stay backend-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model_config.h"

namespace lmdref {

struct TensorInfo {
  bool found = false;
  std::vector<uint64_t> shape;
  std::string dtype;  // "F32", "BF16", …
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual TensorInfo info(const std::string& name) const = 0;
  // Elements [first, first + count) of the tensor, row-major, as fp32.
  virtual void read(const std::string& name, uint64_t first, uint64_t count, float* out) const = 0;
};

// Every tensor the model needs, with its expected shape.
struct TensorSpec {
  std::string name;
  std::vector<uint64_t> shape;
};
std::vector<TensorSpec> required_tensors(const ModelConfig& m);

// Checks that the source holds each required tensor with the right shape and a
// readable dtype; throws Error(LMD_ERR_INVALID) naming the first bad tensor.
void check_weight_source(const ModelConfig& m, const WeightSource& src, const std::string& origin);

// Random weights of a given shape and seed (see random_weights.h).
std::unique_ptr<WeightSource> make_random_source(const ModelConfig& m, uint64_t seed);

std::string shape_string(const std::vector<uint64_t>& shape);

}  // namespace lmdref
