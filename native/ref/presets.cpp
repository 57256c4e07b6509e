#include "presets.h"

#include <iterator>

#include "presets_table.h"

namespace lmdref {

const std::vector<Preset>& presets() {
  static const std::vector<Preset> table(std::begin(kPresets), std::end(kPresets));
  return table;
}

const Preset* find_preset(const std::string& name) {
  for (const Preset& p : presets())
    if (name == p.name) return &p;
  return nullptr;
}

std::string preset_names() {
  std::string s;
  for (const Preset& p : presets()) {
    if (!s.empty()) s += ", ";
    s += p.name;
  }
  return s;
}

ModelConfig preset_model_config(const Preset& p) {
  ModelConfig m;
  m.vocab = p.vocab;
  m.hidden = p.hidden;
  m.intermediate = p.intermediate;
  m.layers = p.layers;
  m.heads = p.heads;
  m.kv_heads = p.kv_heads;
  m.head_dim = p.hidden / p.heads;
  m.tied = p.tied;
  m.max_pos = p.max_pos;
  m.rope_theta = p.rope_theta;
  m.rms_eps = p.rms_eps;
  m.eos_ids.assign(std::begin(kPresetEosIds), std::end(kPresetEosIds));
  return m;
}

}  // namespace lmdref
