// Named model shapes for random:<preset> engines (Qwen2.5 family and two tiny
// ones). The table itself, presets_table.h, is generated from the Go table in
// driver/checkpoint/preset.go (its test fails when the two differ).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_config.h"

namespace lmdref {

struct Preset {
  const char* name;
  uint32_t vocab, hidden, intermediate, layers, heads, kv_heads;
  bool tied;
  uint32_t max_pos;
  double rope_theta;
  float rms_eps;
};

const std::vector<Preset>& presets();
// nullptr when unknown.
const Preset* find_preset(const std::string& name);
// "tiny, tiny-untied, qwen2.5-0.5b, …" for error messages.
std::string preset_names();
// Shape plus the default EOS set of random presets.
ModelConfig preset_model_config(const Preset& p);

}  // namespace lmdref
