#include "weight_source.h"

#include <map>

#include "kit.h"
#include "random_weights.h"

namespace lmdref {

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<TensorSpec> required_tensors(const ModelConfig& m) {
  const uint64_t h = m.hidden, q = m.q_dim(), kv = m.kv_dim(), in = m.intermediate;
  std::vector<TensorSpec> t;
  t.push_back({"model.embed_tokens.weight", {m.vocab, h}});
  for (uint32_t l = 0; l < m.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {h}});
    t.push_back({p + "self_attn.q_proj.weight", {q, h}});
    t.push_back({p + "self_attn.q_proj.bias", {q}});
    t.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    t.push_back({p + "self_attn.k_proj.bias", {kv}});
    t.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    t.push_back({p + "self_attn.v_proj.bias", {kv}});
    t.push_back({p + "self_attn.o_proj.weight", {h, q}});
    t.push_back({p + "post_attention_layernorm.weight", {h}});
    t.push_back({p + "mlp.gate_proj.weight", {in, h}});
    t.push_back({p + "mlp.up_proj.weight", {in, h}});
    t.push_back({p + "mlp.down_proj.weight", {h, in}});
  }
  t.push_back({"model.norm.weight", {h}});
  if (!m.tied) t.push_back({"lm_head.weight", {m.vocab, h}});
  return t;
}

void check_weight_source(const ModelConfig& m, const WeightSource& src, const std::string& origin) {
  for (const TensorSpec& spec : required_tensors(m)) {
    TensorInfo ti = src.info(spec.name);
    if (!ti.found) invalid(origin + ": missing required tensor \"" + spec.name + "\"");
    if (ti.shape != spec.shape)
      invalid(origin + ": tensor \"" + spec.name + "\" has shape " + shape_string(ti.shape) +
              ", expected " + shape_string(spec.shape) + " for this model config");
    if (ti.dtype != "F32" && ti.dtype != "F16" && ti.dtype != "BF16")
      invalid(origin + ": tensor \"" + spec.name + "\" has dtype " + ti.dtype +
              "; only F32, F16 and BF16 can be loaded");
  }
}

namespace {

class RandomSource : public WeightSource {
 public:
  RandomSource(const ModelConfig& m, uint64_t seed) : seed_(seed) {
    for (const TensorSpec& t : required_tensors(m)) shapes_[t.name] = t.shape;
  }

  TensorInfo info(const std::string& name) const override {
    TensorInfo ti;
    auto it = shapes_.find(name);
    if (it == shapes_.end()) return ti;
    ti.found = true;
    ti.shape = it->second;
    ti.dtype = "F32";
    return ti;
  }

  void read(const std::string& name, uint64_t first, uint64_t count, float* out) const override {
    auto it = shapes_.find(name);
    if (it == shapes_.end()) invalid("random weights have no tensor \"" + name + "\"");
    const RandomRule rule = random_rule(name, seed_, it->second.back());
    fill_random(rule, first, count, out);
  }

 private:
  uint64_t seed_;
  std::map<std::string, std::vector<uint64_t>> shapes_;
};

}  // namespace

std::unique_ptr<WeightSource> make_random_source(const ModelConfig& m, uint64_t seed) {
  return std::make_unique<RandomSource>(m, seed);
}

}  // namespace lmdref
