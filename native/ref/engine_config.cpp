#include "engine_config.h"

#include <cmath>
#include <cstring>
#include <thread>

#include "errors.h"
#include "json.h"

namespace lmdref {

const char* engine_config_keys() {
  return "model, seed, device, threads, max_seq_len, eos_ids, calibrate, dtype";
}

namespace {

std::string where(const std::string& key) { return "config key \"" + key + "\""; }

uint64_t as_u64(const json::Value& v, const std::string& key) {
  uint64_t u;
  if (!v.to_u64(&u)) invalid(where(key) + " must be a non-negative integer");
  return u;
}

std::string as_string(const json::Value& v, const std::string& key) {
  if (!v.is(json::Type::String)) invalid(where(key) + " must be a string");
  return v.text;
}

}  // namespace

EngineConfig parse_engine_config(const char* json_text) {
  if (!json_text) invalid("config is NULL");
  json::Value root;
  try {
    root = json::parse(json_text, std::strlen(json_text));
  } catch (const json::ParseError& e) {
    invalid(std::string("config: ") + e.what());
  }
  if (!root.is(json::Type::Object)) invalid("config must be a JSON object");

  EngineConfig c;
  bool have_model = false;
  int64_t threads = 0;
  for (const auto& [key, v] : root.members) {
    if (key == "model") {
      c.model = as_string(v, key);
      have_model = true;
    } else if (key == "seed") {
      c.seed = as_u64(v, key);
    } else if (key == "device") {
      c.device = as_string(v, key);
    } else if (key == "threads") {
      if (!v.to_i64(&threads) || threads < 0 || threads > 4096)
        invalid(where(key) + " must be an integer in [0, 4096] (0: one per hardware thread)");
    } else if (key == "max_seq_len") {
      uint64_t n = as_u64(v, key);
      if (n < 2 || n > INT32_MAX) invalid(where(key) + " must be in [2, 2147483647]");
      c.max_seq_len = static_cast<uint32_t>(n);
    } else if (key == "eos_ids") {
      if (!v.is(json::Type::Array)) invalid(where(key) + " must be an array of token ids");
      if (v.items.size() > 32) invalid(where(key) + " holds more than 32 ids");
      c.eos_override = true;
      for (const auto& item : v.items) {
        int64_t id;
        if (!item.to_i64(&id) || id < 0 || id > INT32_MAX)
          invalid(where(key) + " must hold non-negative integer token ids");
        c.eos_ids.push_back(static_cast<int32_t>(id));
      }
    } else if (key == "calibrate") {
      if (!v.is(json::Type::Bool)) invalid(where(key) + " must be true or false");
      c.calibrate = v.boolean;
    } else if (key == "dtype") {
      c.dtype = as_string(v, key);
    } else {
      invalid("unknown config key \"" + key + "\"; valid keys: " + engine_config_keys());
    }
  }
  if (!have_model || c.model.empty())
    invalid("config key \"model\" is required: a Hugging Face checkpoint directory or random:<preset>");
  if (c.model.rfind("random:", 0) == 0) {
    c.random = true;
    c.preset = c.model.substr(7);
  }
  c.threads = static_cast<int>(threads);
  if (c.threads == 0) {
    unsigned hw = std::thread::hardware_concurrency();
    c.threads = hw ? static_cast<int>(hw) : 1;
  }
  return c;
}

}  // namespace lmdref
