// The shape of a Qwen2 model, from a preset or a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lmdref {

struct ModelConfig {
  uint32_t vocab = 0;
  uint32_t hidden = 0;
  uint32_t intermediate = 0;
  uint32_t layers = 0;
  uint32_t heads = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  bool tied = false;        // lm_head shares embed_tokens
  uint32_t max_pos = 0;     // max_position_embeddings
  double rope_theta = 10000;
  float rms_eps = 1e-6f;
  std::vector<int32_t> eos_ids;

  uint32_t q_dim() const { return heads * head_dim; }
  uint32_t kv_dim() const { return kv_heads * head_dim; }
  // Number of weights, counting lm_head once when tied.
  uint64_t param_count() const;
  // Throws Error(LMD_ERR_INVALID) when the shape cannot be run.
  void validate(const std::string& origin) const;
};

// Reads <dir>/config.json and, when present, <dir>/generation_config.json
// (its eos_token_id joins the EOS set).
ModelConfig read_hf_model_config(const std::string& dir);

}  // namespace lmdref
