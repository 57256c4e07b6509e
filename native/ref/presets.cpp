#include "presets.h"

namespace lmdref {

const std::vector<Preset>& presets() {
  // name, vocab, hidden, intermediate, layers, heads, kv_heads, tied, max_pos, rope_theta, rms_eps
  static const std::vector<Preset> table = {
      {"tiny", 151936, 64, 176, 2, 4, 2, true, 32768, 1e6, 1e-6f},
      {"tiny-untied", 151936, 96, 256, 3, 6, 2, false, 4096, 10000, 1e-5f},
      {"qwen2.5-0.5b", 151936, 896, 4864, 24, 14, 2, true, 32768, 1e6, 1e-6f},
      {"qwen2.5-1.5b", 151936, 1536, 8960, 28, 12, 2, true, 32768, 1e6, 1e-6f},
      {"qwen2.5-3b", 151936, 2048, 11008, 36, 16, 2, true, 32768, 1e6, 1e-6f},
      {"qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, false, 32768, 1e6, 1e-6f},
      {"qwen2.5-14b", 152064, 5120, 13824, 48, 40, 8, false, 32768, 1e6, 1e-5f},
      {"qwen2.5-32b", 152064, 5120, 27648, 64, 40, 8, false, 32768, 1e6, 1e-5f},
      {"qwen2.5-72b", 152064, 8192, 29568, 80, 64, 8, false, 32768, 1e6, 1e-5f},
  };
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
  // Qwen2.5's <|endoftext|> and <|im_end|>.
  m.eos_ids = {151643, 151645};
  return m;
}

}  // namespace lmdref
