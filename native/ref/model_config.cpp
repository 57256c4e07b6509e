#include "model_config.h"

#include <algorithm>

#include "kit.h"

namespace lmdref {

uint64_t ModelConfig::param_count() const {
  const uint64_t h = hidden, q = q_dim(), kv = kv_dim(), i = intermediate;
  const uint64_t per_layer = 2 * h                 // two norms
                             + q * h + q           // q_proj + bias
                             + 2 * (kv * h + kv)   // k_proj, v_proj + biases
                             + h * q               // o_proj
                             + 3 * h * i;          // gate, up, down
  uint64_t n = uint64_t(vocab) * h + per_layer * layers + h;
  if (!tied) n += uint64_t(vocab) * h;
  return n;
}

void ModelConfig::validate(const std::string& origin) const {
  auto bad = [&](const std::string& what) { invalid(origin + ": " + what); };
  if (vocab == 0 || hidden == 0 || intermediate == 0 || layers == 0 || heads == 0 ||
      kv_heads == 0 || head_dim == 0)
    bad("vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, "
        "num_key_value_heads and head_dim must all be positive");
  if (heads % kv_heads != 0)
    bad("num_attention_heads (" + std::to_string(heads) +
        ") is not a multiple of num_key_value_heads (" + std::to_string(kv_heads) + ")");
  if (head_dim % 2 != 0) bad("head_dim " + std::to_string(head_dim) + " is odd");
  if (!(rope_theta > 0)) bad("rope_theta must be positive");
  if (!(rms_eps > 0)) bad("rms_norm_eps must be positive");
  if (vocab > uint32_t(INT32_MAX)) bad("vocab_size too large");
  if (max_pos > uint32_t(INT32_MAX)) bad("max_position_embeddings too large");
}

namespace {

uint32_t get_u32(const Json& cfg, const char* key, const std::string& file, bool required,
                 uint32_t fallback) {
  const Json* v = cfg.find(key);
  if (!v || v->is_null()) {
    if (required) invalid(file + ": missing \"" + key + "\"");
    return fallback;
  }
  uint64_t u;
  if (!v->to_u64(&u) || u > UINT32_MAX)
    invalid(file + ": \"" + key + "\" must be a non-negative integer");
  return static_cast<uint32_t>(u);
}

double get_number(const Json& cfg, const char* key, const std::string& file,
                  double fallback) {
  const Json* v = cfg.find(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_number()) invalid(file + ": \"" + key + "\" must be a number");
  return v->as_double();
}

// eos_token_id may be an integer or a list of integers.
void add_eos(const Json& cfg, const std::string& file, std::vector<int32_t>* out) {
  const Json* v = cfg.find("eos_token_id");
  if (!v || v->is_null()) return;
  std::vector<const Json*> ids;
  if (v->is_array()) {
    for (const auto& item : v->items()) ids.push_back(&item);
  } else {
    ids.push_back(v);
  }
  for (const Json* id : ids) {
    int64_t x;
    if (!id->to_i64(&x) || x < 0 || x > INT32_MAX)
      invalid(file + ": eos_token_id must be a non-negative integer or a list of them");
    if (std::find(out->begin(), out->end(), int32_t(x)) == out->end())
      out->push_back(static_cast<int32_t>(x));
  }
}

Json read_json_file(const std::string& path) {
  Json v = Json::parse(read_file(path), path);
  if (!v.is_object()) invalid(path + ": expected a JSON object");
  return v;
}

}  // namespace

ModelConfig read_hf_model_config(const std::string& dir) {
  const std::string file = join_path(dir, "config.json");
  if (!file_exists(file)) invalid(dir + ": no config.json (expected a Hugging Face checkpoint directory)");
  Json cfg = read_json_file(file);

  if (const Json* mt = cfg.find("model_type")) {
    if (!mt->is_string() || mt->as_string() != "qwen2")
      fail(LMD_ERR_UNSUPPORTED, file + ": model_type \"" + mt->as_string() +
                                    "\" is not supported; the reference engine runs qwen2");
  }
  if (const Json* rs = cfg.find("rope_scaling")) {
    if (!rs->is_null()) {
      const Json* t = rs->is_object() ? rs->find("rope_type") : nullptr;
      if (!t) t = rs->is_object() ? rs->find("type") : nullptr;
      if (!t || !t->is_string() || t->as_string() != "default")
        fail(LMD_ERR_UNSUPPORTED, file + ": rope_scaling is not supported");
    }
  }
  if (const Json* sw = cfg.find("use_sliding_window")) {
    if (sw->is_bool() && sw->as_bool())
      fail(LMD_ERR_UNSUPPORTED, file + ": use_sliding_window=true is not supported");
  }

  ModelConfig m;
  m.vocab = get_u32(cfg, "vocab_size", file, true, 0);
  m.hidden = get_u32(cfg, "hidden_size", file, true, 0);
  m.intermediate = get_u32(cfg, "intermediate_size", file, true, 0);
  m.layers = get_u32(cfg, "num_hidden_layers", file, true, 0);
  m.heads = get_u32(cfg, "num_attention_heads", file, true, 0);
  m.kv_heads = get_u32(cfg, "num_key_value_heads", file, false, m.heads);
  if (const Json* hd = cfg.find("head_dim"); (!hd || hd->is_null()) && m.heads && m.hidden % m.heads != 0)
    invalid(file + ": hidden_size (" + std::to_string(m.hidden) +
            ") is not divisible by num_attention_heads (" + std::to_string(m.heads) +
            "), and there is no head_dim to say the head size");
  m.head_dim = get_u32(cfg, "head_dim", file, false, m.heads ? m.hidden / m.heads : 0);
  // Qwen2Config's defaults where a key is absent.
  m.max_pos = get_u32(cfg, "max_position_embeddings", file, false, 32768);
  m.rms_eps = static_cast<float>(get_number(cfg, "rms_norm_eps", file, 1e-6));

  double theta = 10000;
  if (const Json* rp = cfg.find("rope_parameters"); rp && rp->is_object())
    theta = get_number(*rp, "rope_theta", file, theta);
  m.rope_theta = get_number(cfg, "rope_theta", file, theta);

  if (const Json* t = cfg.find("tie_word_embeddings")) {
    if (!t->is_bool()) invalid(file + ": tie_word_embeddings must be true or false");
    m.tied = t->as_bool();
  }

  add_eos(cfg, file, &m.eos_ids);
  const std::string gen = join_path(dir, "generation_config.json");
  if (file_exists(gen)) add_eos(read_json_file(gen), gen, &m.eos_ids);

  m.validate(file);
  return m;
}

}  // namespace lmdref
