// The JSON object given to create(): parsed and checked, nothing loaded yet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lmdref {

struct EngineConfig {
  std::string model;           // as given
  bool random = false;         // model is random:<preset>
  std::string preset;          // the <preset> part
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;             // resolved: never 0 after parsing
  uint32_t max_seq_len = 0;    // 0: not overridden
  bool eos_override = false;
  std::vector<int32_t> eos_ids;
  bool calibrate = false;
  std::string dtype = "fp32";  // activations; "fp16" when device is cuda and no dtype was given
  std::string weights;         // Linear weights: "" (the dtype), "int8" or "fp8"
  bool quantize_lm_head = false;  // lm_head in the weights' format too
  uint32_t tp = 1;             // tensor-parallel size (cuda only)
  std::vector<int32_t> devices;  // CUDA ordinals, one per rank (cuda only)
  uint32_t max_batch = 64;       // generations in flight at once
  uint32_t step_tokens = 0;      // tokens per step while sequences decode; 0 until parsed
};

// The backend's device string: "cpu", or "cuda:<id>,<id>,…" with one CUDA
// ordinal per tensor-parallel rank.
std::string backend_device(const EngineConfig& c);

// Throws Error(LMD_ERR_INVALID) naming the bad key or value.
EngineConfig parse_engine_config(const char* json_text);

// "model, seed, device, …" for messages.
const char* engine_config_keys();

}  // namespace lmdref
