#include "fixtures.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "quantize.h"

namespace fixtures {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lmdref-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xFF);
  return s + header + data;
}

lmdref::TensorInfo DequantizedSource::info(const std::string& name) const {
  lmdref::TensorInfo ti = inner_.info(name);
  if (!ti.found && lm_head_ && name == "lm_head.weight") return inner_.info("model.embed_tokens.weight");
  return ti;
}

void DequantizedSource::read(const std::string& name_in, uint64_t first, uint64_t count,
                             float* out) const {
  const bool head = lm_head_ && name_in == "lm_head.weight";
  if (!lmdref::is_linear_weight(name_in) && !head) return inner_.read(name_in, first, count, out);
  const std::string name =
      head && !inner_.info(name_in).found ? "model.embed_tokens.weight" : name_in;
  const uint64_t cols = inner_.info(name).shape.at(1);
  const uint64_t r0 = first / cols, r1 = (first + count + cols - 1) / cols;
  std::vector<float> w((r1 - r0) * cols);
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(r1 - r0);
  inner_.read(name, r0 * cols, w.size(), w.data());
  lmdref::quantize_int8(w.data(), r1 - r0, cols, q.data(), scales.data(), name);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = first - r0 * cols + i;
    out[i] = float(q[at]) * scales[at / cols];
  }
}

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7FFF + ((b >> 16) & 1);  // round to nearest even
  return uint16_t(b >> 16);
}

uint16_t to_f16(float f) {
  // Enough for weights in (-4, 4): normal numbers only, round to nearest even.
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000;
  const int exp = int((b >> 23) & 0xFF) - 127 + 15;
  uint32_t man = b & 0x7FFFFF;
  if (exp <= 0) return uint16_t(sign);  // flush tiny values to zero
  uint32_t h = sign | uint32_t(exp) << 10 | man >> 13;
  const uint32_t rest = man & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return uint16_t(h);
}

std::string qwen2_config_json(const lmdref::ModelConfig& m, const std::string& eos_json) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", "
                "\"vocab_size\": %u, \"hidden_size\": %u, \"intermediate_size\": %u, "
                "\"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
                "\"num_key_value_heads\": %u, \"max_position_embeddings\": %u, "
                "\"rope_theta\": %.17g, \"rms_norm_eps\": %.9g, \"tie_word_embeddings\": %s, "
                "\"rope_scaling\": null, \"use_sliding_window\": false, "
                "\"torch_dtype\": \"float32\", \"eos_token_id\": %s}",
                m.vocab, m.hidden, m.intermediate, m.layers, m.heads, m.kv_heads, m.max_pos,
                m.rope_theta, double(m.rms_eps), m.tied ? "true" : "false", eos_json.c_str());
  return buf;
}

void write_checkpoint(const std::string& dir, const lmdref::ModelConfig& m,
                      const lmdref::WeightSource& src, const CheckpointOptions& opt) {
  write_file(dir + "/config.json", qwen2_config_json(m, opt.eos_json));
  std::vector<lmdref::TensorSpec> specs = lmdref::required_tensors(m);
  const int shards = opt.shards < 1 ? 1 : opt.shards;
  std::vector<std::string> headers(shards, "{\"__metadata__\": {\"format\": \"pt\"}"), data(shards);
  std::string index = "{\"metadata\": {}, \"weight_map\": {";
  for (size_t t = 0; t < specs.size(); ++t) {
    const auto& s = specs[t];
    if (s.name == opt.omit) continue;
    const int k = int(t % shards);
    uint64_t count = 1;
    for (uint64_t d : s.shape) count *= d;
    std::vector<float> v(count);
    src.read(s.name, 0, count, v.data());
    std::vector<uint64_t> shape = s.shape;
    if (s.name == opt.reshape) {
      shape = {1, 1};
      v.resize(1);
    }
    std::string bytes;
    for (float f : v) {
      if (opt.dtype == "F32") {
        bytes.append(reinterpret_cast<const char*>(&f), 4);
      } else {
        uint16_t h = opt.dtype == "BF16" ? to_bf16(f) : to_f16(f);
        bytes.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    std::string shape_json;
    for (size_t i = 0; i < shape.size(); ++i)
      shape_json += (i ? ", " : "") + std::to_string(shape[i]);
    const uint64_t begin = data[k].size();
    data[k] += bytes;
    const std::string dtype = s.name == opt.as_i32 ? "I32" : opt.dtype;
    headers[k] += ", \"" + s.name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": [" +
                  shape_json + "], \"data_offsets\": [" + std::to_string(begin) + ", " +
                  std::to_string(data[k].size()) + "]}";
    char shard_name[64];
    std::snprintf(shard_name, sizeof shard_name, "model-%05d-of-%05d.safetensors", k + 1, shards);
    index += std::string(index.back() == '{' ? "" : ", ") + "\"" + s.name + "\": \"" +
             shard_name + "\"";
  }
  if (shards == 1) {
    write_file(dir + "/model.safetensors", safetensors_bytes(headers[0] + "}", data[0]));
    return;
  }
  for (int k = 0; k < shards; ++k) {
    char shard_name[64];
    std::snprintf(shard_name, sizeof shard_name, "model-%05d-of-%05d.safetensors", k + 1, shards);
    write_file(dir + "/" + shard_name, safetensors_bytes(headers[k] + "}", data[k]));
  }
  write_file(dir + "/model.safetensors.index.json", index + "}}");
}

}  // namespace fixtures
