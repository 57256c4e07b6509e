// Weights from a Hugging Face checkpoint directory: model.safetensors, or
// shards listed in model.safetensors.index.json.
#pragma once

#include <memory>
#include <string>

#include "weight_source.h"

namespace lmdref {

// Throws Error(LMD_ERR_INVALID) naming the file and what is wrong.
std::unique_ptr<WeightSource> open_checkpoint(const std::string& dir);

}  // namespace lmdref
