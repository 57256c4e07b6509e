// Engine config keys, the preset table, and create() failures that must be
// clear before any weight is loaded.
#include <sched.h>

#include <cstring>

#include "check.h"
#include "engine_config.h"
#include "host_memory.h"
#include "kit.h"
#include "lmdrive.h"
#include "presets.h"

using namespace lmdref;

static std::string config_error(const char* json, int32_t* code = nullptr) {
  try {
    parse_engine_config(json);
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

static std::string create_error(const std::string& json, int32_t* code) {
  const lmd_api* api = lmdrive_get_api();
  lmd_engine* e = nullptr;
  lmd_error err{};
  err.struct_size = sizeof err;
  *code = api->create(json.c_str(), &e, &err);
  if (*code == LMD_OK) {
    api->destroy(e);
    return "";
  }
  CHECK(e == nullptr);
  CHECK_EQ(err.code, *code);
  return err.message;
}

TEST_CASE(engine_config) {
  EngineConfig c = parse_engine_config(
      R"({"model": "random:tiny", "seed": 18446744073709551615, "device": "cpu", "threads": 3,
          "max_seq_len": 4096, "eos_ids": [1, 2], "calibrate": true, "dtype": "fp32"})");
  CHECK(c.random && c.preset == "tiny");
  CHECK(c.seed == UINT64_MAX);
  CHECK_EQ(c.threads, 3);
  CHECK_EQ(c.max_seq_len, 4096u);
  CHECK(c.eos_override && c.eos_ids == std::vector<int32_t>({1, 2}));
  CHECK(c.calibrate);

  EngineConfig d = parse_engine_config(R"({"model": "/some/dir"})");
  CHECK(!d.random && d.seed == 0 && d.device == "cpu" && d.threads >= 1 && !d.eos_override);
  CHECK(d.max_seq_len == 0 && !d.calibrate && d.dtype == "fp32");
  {
    // The default thread count is the CPUs this process may use (taskset,
    // a container's cpuset), not the machine's.
    cpu_set_t saved, one;
    CHECK(sched_getaffinity(0, sizeof saved, &saved) == 0);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &saved)) ++first;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    CHECK_EQ(parse_engine_config(R"({"model": "/some/dir"})").threads, 1);
    CHECK(sched_setaffinity(0, sizeof saved, &saved) == 0);
    CHECK_EQ(parse_engine_config(R"({"model": "/some/dir"})").threads, CPU_COUNT(&saved));
  }

  int32_t code = 0;
  std::string e = config_error(R"({"model": "random:tiny", "sead": 1})", &code);
  CHECK_EQ(code, LMD_ERR_INVALID);
  CHECK_HAS(e, "unknown config key \"sead\"");
  CHECK_HAS(e, "model, seed, device, threads, max_seq_len, eos_ids, calibrate, dtype");
  CHECK_HAS(config_error(R"({"seed": 1})"), "\"model\" is required");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "seed": -1})"), "\"seed\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "seed": 1.5})"), "\"seed\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "threads": -2})"), "\"threads\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "eos_ids": [1, -1]})"), "\"eos_ids\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "calibrate": 1})"), "\"calibrate\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "max_seq_len": 1})"), "\"max_seq_len\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny",})"), "invalid JSON");
  CHECK_HAS(config_error(R"(["model"])"), "JSON object");
}

TEST_CASE(preset_table) {
  CHECK_EQ(presets().size(), size_t(9));
  CHECK_EQ(preset_names(),
           std::string("tiny, tiny-untied, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b, "
                       "qwen2.5-14b, qwen2.5-32b, qwen2.5-72b"));
  const Preset* t = find_preset("tiny");
  CHECK(t && t->vocab == 151936 && t->hidden == 64 && t->intermediate == 176 && t->layers == 2);
  CHECK(t->heads == 4 && t->kv_heads == 2 && t->tied && t->max_pos == 32768);
  ModelConfig tiny = preset_model_config(*t);
  CHECK_EQ(tiny.head_dim, 16u);
  CHECK(tiny.eos_ids == std::vector<int32_t>({151643, 151645}));
  const Preset* u = find_preset("tiny-untied");
  CHECK(u && !u->tied && u->max_pos == 4096 && u->rope_theta == 10000 && u->rms_eps == 1e-5f);
  CHECK_EQ(preset_model_config(*u).head_dim, 16u);
  CHECK(find_preset("qwen2.5-72b")->hidden == 8192 && find_preset("qwen2.5-72b")->kv_heads == 8);
  CHECK(find_preset("qwen2.5-14b")->rms_eps == 1e-5f);
  CHECK(find_preset("qwen2.5-7b")->vocab == 152064 && !find_preset("qwen2.5-7b")->tied);
  CHECK(find_preset("nope") == nullptr);
  // Parameter counts of the real Qwen2.5 checkpoints (as published, to 3 digits).
  CHECK_EQ(preset_model_config(*find_preset("qwen2.5-0.5b")).param_count() / 1000000, 494ull);
  CHECK_EQ(preset_model_config(*find_preset("qwen2.5-7b")).param_count() / 10000000, 761ull);
  CHECK_EQ(preset_model_config(*find_preset("qwen2.5-72b")).param_count() / 100000000, 727ull);
  for (const Preset& p : presets()) preset_model_config(p).validate(p.name);
}

TEST_CASE(create_failures) {
  int32_t code = 0;
  std::string e = create_error(R"({"model": "random:huge"})", &code);
  CHECK_EQ(code, LMD_ERR_INVALID);
  CHECK_HAS(e, "unknown preset \"huge\"");
  CHECK_HAS(e, "tiny, tiny-untied, qwen2.5-0.5b");

  e = create_error(R"({"model": "random:tiny", "device": "cuda"})", &code);
  CHECK_EQ(code, LMD_ERR_UNSUPPORTED);
  CHECK_HAS(e, "only the CPU backend");
  e = create_error(R"({"model": "random:tiny", "dtype": "bf16"})", &code);
  CHECK_EQ(code, LMD_ERR_UNSUPPORTED);
  CHECK_HAS(e, "fp32");
  e = create_error(R"({"model": "random:tiny", "eos_ids": [151936]})", &code);
  CHECK_EQ(code, LMD_ERR_INVALID);
  CHECK_HAS(e, "outside the vocabulary");

  // Refused from the size estimate, before allocating: only where it cannot fit.
  const uint64_t need = preset_model_config(*find_preset("qwen2.5-72b")).param_count() * 4;
  const int64_t avail = mem_available_bytes();
  if (avail >= 0 && uint64_t(avail) < need) {
    e = create_error(R"({"model": "random:qwen2.5-72b"})", &code);
    CHECK_EQ(code, LMD_ERR_NOMEM);
    CHECK_HAS(e, "random:qwen2.5-72b needs 290.8 GB of host memory for fp32 weights, ");
    CHECK_HAS(e, "available; use --device cuda or a smaller preset");
  } else {
    std::printf("skipping the host-memory refusal: this host has %s available\n",
                format_gb(uint64_t(avail)).c_str());
  }

  // Calibration needs no weights, so even the largest preset is instant.
  const lmd_api* api = lmdrive_get_api();
  lmd_engine* eng = nullptr;
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(api->create(R"({"model": "random:qwen2.5-72b", "calibrate": true, "seed": 3})", &eng, &err),
           LMD_OK);
  lmd_info info{};
  info.struct_size = sizeof info;
  CHECK_EQ(api->info(eng, &info, &err), LMD_OK);
  CHECK_EQ(info.vocab_size, 152064u);
  CHECK_EQ(std::string(info.model), std::string("random:qwen2.5-72b seed=3 calibrate"));
  CHECK_EQ(info.caps, 0u);
  api->destroy(eng);
}

// "weights" (int8 / fp8) and "quantize_lm_head": parsing, refusals, and an
// int8 engine reporting its precision.
TEST_CASE(weight_formats) {
  EngineConfig c = parse_engine_config(
      R"({"model": "random:tiny", "weights": "int8", "quantize_lm_head": true})");
  CHECK(c.weights == "int8" && c.quantize_lm_head && c.dtype == "fp32");
  EngineConfig g = parse_engine_config(R"({"model": "random:tiny", "device": "cuda", "weights": "fp8"})");
  CHECK(g.weights == "fp8" && g.dtype == "fp16" && !g.quantize_lm_head);
  int32_t code = 0;
  std::string e = config_error(R"({"model": "random:tiny", "weights": "int4"})", &code);
  CHECK_EQ(code, LMD_ERR_INVALID);
  CHECK_HAS(e, "config key \"weights\": \"int4\" is not a weight format");
  CHECK_HAS(e, "\"int8\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "weights": 8})"), "\"weights\" must be a string");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "quantize_lm_head": true})"),
            "\"quantize_lm_head\" needs \"weights\"");
  CHECK_HAS(config_error(R"({"model": "random:tiny", "weights": "int8", "quantize_lm_head": 1})"),
            "\"quantize_lm_head\" must be true or false");

  e = create_error(R"({"model": "random:tiny", "weights": "fp8"})", &code);
  CHECK_EQ(code, LMD_ERR_UNSUPPORTED);
  CHECK_HAS(e, "fp8 weights need the CUDA backend on an sm_90 GPU");

  const int64_t avail = mem_available_bytes();
  if (avail >= 0 && uint64_t(avail) < 80000000000ull) {
    e = create_error(R"({"model": "random:qwen2.5-72b", "weights": "int8"})", &code);
    CHECK_EQ(code, LMD_ERR_NOMEM);
    // 72.7e9 weights: 70.2e9 of them in Linear layers at 1 byte (+ 34 MB of
    // scales), the other 2.5e9 in fp32.
    CHECK_HAS(e, "random:qwen2.5-72b needs 80.2 GB of host memory for int8 weights, ");
  }

  const lmd_api* api = lmdrive_get_api();
  lmd_engine* eng = nullptr;
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(api->create(R"({"model": "random:tiny", "weights": "int8", "threads": 1})", &eng, &err),
           LMD_OK);
  lmd_info info{};
  info.struct_size = sizeof info;
  CHECK_EQ(api->info(eng, &info, &err), LMD_OK);
  CHECK_EQ(std::string(info.dtype), std::string("int8/fp32"));
  api->destroy(eng);
}

TEST_MAIN("test_config")
