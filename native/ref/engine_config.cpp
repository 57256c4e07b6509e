#include "engine_config.h"

#include <sched.h>

#include <cmath>
#include <cstring>
#include <thread>

#include "kit.h"
#include "quantize.h"

namespace lmdref {

const char* engine_config_keys() {
  return "model, seed, device, threads, max_seq_len, eos_ids, calibrate, dtype, weights, quantize_lm_head, tp, "
         "devices, max_batch, step_tokens";
}

namespace {

// The CPUs this process may run on (its affinity mask, as taskset or a
// container's cpuset leaves it), else the machine's hardware threads.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

std::string where(const std::string& key) { return "config key \"" + key + "\""; }

uint64_t as_u64(const Json& v, const std::string& key) {
  uint64_t u;
  if (!v.to_u64(&u)) invalid(where(key) + " must be a non-negative integer");
  return u;
}

std::string as_string(const Json& v, const std::string& key) {
  if (!v.is_string()) invalid(where(key) + " must be a string");
  return v.as_string();
}

}  // namespace

EngineConfig parse_engine_config(const char* json_text) {
  if (!json_text) invalid("config is NULL");
  const Json root = Json::parse(json_text, "config");
  if (!root.is_object()) invalid("config must be a JSON object");

  EngineConfig c;
  bool have_model = false, have_dtype = false, have_tp = false, have_devices = false;
  int64_t threads = 0;
  for (const auto& [key, v] : root.members()) {
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
      if (!v.is_array()) invalid(where(key) + " must be an array of token ids");
      if (v.items().size() > 32) invalid(where(key) + " holds more than 32 ids");
      c.eos_override = true;
      for (const auto& item : v.items()) {
        int64_t id;
        if (!item.to_i64(&id) || id < 0 || id > INT32_MAX)
          invalid(where(key) + " must hold non-negative integer token ids");
        c.eos_ids.push_back(static_cast<int32_t>(id));
      }
    } else if (key == "calibrate") {
      if (!v.is_bool()) invalid(where(key) + " must be true or false");
      c.calibrate = v.as_bool();
    } else if (key == "dtype") {
      c.dtype = as_string(v, key);
      have_dtype = true;
    } else if (key == "weights") {
      c.weights = as_string(v, key);
      parse_weight_format(c.weights);
    } else if (key == "quantize_lm_head") {
      if (!v.is_bool()) invalid(where(key) + " must be true or false");
      c.quantize_lm_head = v.as_bool();
    } else if (key == "tp") {
      uint64_t n = as_u64(v, key);
      if (n < 1 || n > 16) invalid(where(key) + " must be an integer in [1, 16]");
      c.tp = static_cast<uint32_t>(n);
      have_tp = true;
    } else if (key == "devices") {
      if (!v.is_array() || v.items().empty() || v.items().size() > 16)
        invalid(where(key) + " must be an array of 1 to 16 CUDA device ordinals");
      for (const auto& item : v.items()) {
        int64_t id;
        if (!item.to_i64(&id) || id < 0 || id > 1023)
          invalid(where(key) + " must hold CUDA device ordinals (integers in [0, 1023])");
        for (int32_t seen : c.devices)
          if (seen == id) invalid(where(key) + " names device " + std::to_string(id) + " twice");
        c.devices.push_back(static_cast<int32_t>(id));
      }
      have_devices = true;
    } else if (key == "max_batch") {
      const uint64_t n = as_u64(v, key);
      if (n < 1 || n > 4096) invalid(where(key) + " must be an integer in [1, 4096] (generations in flight at once)");
      c.max_batch = static_cast<uint32_t>(n);
    } else if (key == "step_tokens") {
      const uint64_t n = as_u64(v, key);
      if (n < 16 || n > (1u << 20))
        invalid(where(key) + " must be an integer in [16, 1048576] (tokens per step while sequences decode)");
      c.step_tokens = static_cast<uint32_t>(n);
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
  // Devices: "cpu", "cuda" (ranks on devices 0..tp-1) or "cuda:N" (N..N+tp-1);
  // "devices" names them one by one instead.
  const bool cuda = c.device == "cuda" || c.device.rfind("cuda:", 0) == 0;
  if (cuda) {
    int64_t first = 0;
    if (c.device.size() > 5) {
      const std::string n = c.device.substr(5);
      if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos)
        invalid("config key \"device\": \"" + c.device + "\" is not cpu, cuda or cuda:<ordinal>");
      first = std::stoll(n);
    }
    if (have_devices) {
      if (have_tp && c.tp != c.devices.size())
        invalid("config keys \"tp\" (" + std::to_string(c.tp) + ") and \"devices\" (" +
                std::to_string(c.devices.size()) + " ids) disagree");
      c.tp = static_cast<uint32_t>(c.devices.size());
    } else {
      for (uint32_t r = 0; r < c.tp; ++r) c.devices.push_back(static_cast<int32_t>(first + r));
    }
    if (!have_dtype) c.dtype = "fp16";
  } else if (c.tp > 1 || have_devices) {
    fail(LMD_ERR_UNSUPPORTED, "config keys \"tp\" and \"devices\" need device \"cuda\"; device \"" +
                                  c.device + "\" runs on one host without tensor parallelism");
  }
  if (c.quantize_lm_head && c.weights.empty())
    invalid("config key \"quantize_lm_head\" needs \"weights\": \"int8\" or \"fp8\"");
  // A step's prompt tokens while others decode: a GPU step of 2048 costs
  // about what a CPU step of 256 does next to a decode step.
  if (c.step_tokens == 0) c.step_tokens = cuda ? 2048 : 256;
  c.threads = static_cast<int>(threads);
  if (c.threads == 0) c.threads = usable_cpus();
  return c;
}

std::string backend_device(const EngineConfig& c) {
  if (c.devices.empty()) return c.device;
  std::string s = "cuda:";
  for (size_t i = 0; i < c.devices.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(c.devices[i]);
  }
  return s;
}

}  // namespace lmdref
