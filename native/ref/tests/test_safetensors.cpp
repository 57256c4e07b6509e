// Safetensors and checkpoint loading: malformed files are rejected with the
// file name and the problem; good checkpoints (F32, BF16, F16, sharded) load,
// and an F32 checkpoint of random weights reproduces the random engine.
#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"
#include "checkpoint.h"
#include "cpu/cpu_backend.h"
#include "fixtures.h"
#include "kit.h"
#include "model_config.h"
#include "ref_debug.h"
#include "safetensors.h"
#include "weight_source.h"

using namespace lmdref;
using fixtures::safetensors_bytes;

static std::string open_error(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const Error& e) {
    CHECK_EQ(e.code(), LMD_ERR_INVALID);
    return e.what();
  }
  return "";
}

static std::string bad_file(const fixtures::TempDir& dir, const std::string& name,
                            const std::string& bytes) {
  const std::string path = dir.file(name);
  fixtures::write_file(path, bytes);
  std::string msg = open_error(path);
  CHECK_HAS(msg, name);  // every message names the file
  return msg;
}

TEST_CASE(malformed_files) {
  fixtures::TempDir dir;
  const std::string f32x2 = std::string(8, '\0');
  CHECK_HAS(bad_file(dir, "short.safetensors", "abc"), "too small");

  std::string absurd(8, '\0');
  absurd[4] = 1;  // 2^32 bytes of header
  CHECK_HAS(bad_file(dir, "absurd.safetensors", absurd + "{}"), "absurd");

  std::string past = safetensors_bytes("{}", "");
  past[0] = 50;
  CHECK_HAS(bad_file(dir, "past.safetensors", past), "past the end of the file");

  CHECK_HAS(bad_file(dir, "json.safetensors", safetensors_bytes("{\"a\": ", "")), "invalid JSON");
  CHECK_HAS(bad_file(dir, "array.safetensors", safetensors_bytes("[]", "")), "not a JSON object");

  auto one = [](const std::string& entry) { return "{\"t\": " + entry + "}"; };
  CHECK_HAS(bad_file(dir, "dtype.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F12","shape":[2],"data_offsets":[0,8]})"), f32x2)),
            "unknown dtype \"F12\"");
  CHECK_HAS(bad_file(dir, "size.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), f32x2)),
            "needs 12 bytes but data_offsets span 8");
  CHECK_HAS(bad_file(dir, "offsets.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), f32x2)),
            "past the data section");
  CHECK_HAS(bad_file(dir, "reversed.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})"), f32x2)),
            "is before begin");
  CHECK_HAS(bad_file(dir, "overlap.safetensors",
                     safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                          "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                       f32x2)),
            "overlap");
  CHECK_HAS(bad_file(dir, "nooffsets.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[2]})"), f32x2)),
            "data_offsets");
  CHECK_HAS(bad_file(dir, "negshape.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), f32x2)),
            "shape");
  CHECK_HAS(bad_file(dir, "field.safetensors",
                     safetensors_bytes(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), f32x2)),
            "unknown field \"x\"");
  CHECK_HAS(open_error(dir.file("missing.safetensors")), "cannot open");

  // A well-formed file with metadata and an empty tensor is accepted.
  fixtures::write_file(dir.file("good.safetensors"),
                       safetensors_bytes(R"({"__metadata__":{"k":"v"},
                                            "a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},
                                            "e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                                         f32x2));
  SafetensorsFile good(dir.file("good.safetensors"));
  CHECK(good.find("a") && good.find("a")->shape == std::vector<uint64_t>({2, 2}));
  CHECK(good.find("e") && !good.find("__metadata__"));
}

TEST_CASE(conversions) {
  // 1.0, -2.0, 0.5 and the smallest f16 subnormal (2^-24).
  const unsigned char bf16[] = {0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F};
  const unsigned char f16[] = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x01, 0x00};
  float out[4];
  convert_to_f32("BF16", bf16, 3, out);
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f);
  convert_to_f32("F16", f16, 4, out);
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f && out[3] == std::ldexp(1.0f, -24));
}

static ModelConfig small_model() {
  ModelConfig m;
  m.vocab = 300;
  m.hidden = 32;
  m.intermediate = 48;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.head_dim = 8;
  m.tied = false;
  m.max_pos = 512;
  m.rope_theta = 10000;
  m.rms_eps = 1e-6f;
  m.eos_ids = {151643};
  return m;
}

static std::vector<float> logits_of(const ModelConfig& m, const WeightSource& src,
                                    const std::vector<int32_t>& toks) {
  auto b = make_cpu_backend(m, src, 2, 0);
  std::vector<float> out(m.vocab);
  b->forward(toks.data(), int(toks.size()), 0, 1, out.data(), nullptr);
  return out;
}

static std::string checkpoint_error(const std::string& dir) {
  std::string cfg = "{\"model\": \"" + dir + "\", \"threads\": 2}";
  int32_t tok = 1;
  float out[300];
  lmd_error err{};
  err.struct_size = sizeof err;
  int32_t rc = lmdrive_ref_logits(cfg.c_str(), &tok, 1, 1, out, &err);
  return rc == LMD_OK ? std::string() : std::to_string(rc) + ": " + err.message;
}

TEST_CASE(checkpoints) {
  const std::vector<int32_t> toks = {5, 17, 250, 3, 99};
  for (bool tied : {false, true}) {
    ModelConfig m = small_model();
    m.tied = tied;
    auto random = make_random_source(m, 7);
    const std::vector<float> want = logits_of(m, *random, toks);

    for (const char* dtype : {"F32", "BF16", "F16"}) {
      for (int shards : {1, 3}) {
        fixtures::TempDir dir;
        fixtures::CheckpointOptions opt;
        opt.dtype = dtype;
        opt.shards = shards;
        opt.eos_json = "[151645, 7]";
        fixtures::write_checkpoint(dir.path(), m, *random, opt);
        ModelConfig loaded = read_hf_model_config(dir.path());
        CHECK(loaded.hidden == m.hidden && loaded.tied == m.tied && loaded.head_dim == 8);
        CHECK(loaded.eos_ids == std::vector<int32_t>({151645, 7}));
        auto ckpt = open_checkpoint(dir.path());
        check_weight_source(loaded, *ckpt, dir.path());
        const std::vector<float> got = logits_of(loaded, *ckpt, toks);
        float worst = 0, scale = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          worst = std::max(worst, std::fabs(got[i] - want[i]));
          scale = std::max(scale, std::fabs(want[i]));
        }
        // F32 is the same computation bit for bit; 16-bit weights only approximate it.
        const float tol = std::string(dtype) == "F32" ? 0.0f : 0.05f;
        if (worst > tol * scale)
          check::fail(__FILE__, __LINE__,
                      std::string(dtype) + " checkpoint: max|diff| " + std::to_string(worst));
      }
    }
  }

  ModelConfig m = small_model();
  auto random = make_random_source(m, 1);
  {
    fixtures::TempDir dir;
    fixtures::CheckpointOptions opt;
    opt.omit = "model.layers.1.mlp.up_proj.weight";
    fixtures::write_checkpoint(dir.path(), m, *random, opt);
    CHECK_HAS(checkpoint_error(dir.path()), "missing required tensor \"model.layers.1.mlp.up_proj.weight\"");
  }
  {
    fixtures::TempDir dir;
    fixtures::CheckpointOptions opt;
    opt.reshape = "model.layers.0.self_attn.k_proj.weight";
    fixtures::write_checkpoint(dir.path(), m, *random, opt);
    std::string e = checkpoint_error(dir.path());
    CHECK_HAS(e, "\"model.layers.0.self_attn.k_proj.weight\" has shape [1, 1], expected [16, 32]");
  }
  {
    fixtures::TempDir dir;
    fixtures::CheckpointOptions opt;
    opt.shards = 2;
    fixtures::write_checkpoint(dir.path(), m, *random, opt);
    fixtures::write_file(dir.file("model.safetensors.index.json"),
                         R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors",
                                            "lm_head.weight": "model-00002-of-00002.safetensors"}})");
    std::string e = checkpoint_error(dir.path());
    CHECK_HAS(e, "is mapped to model-00002-of-00002.safetensors, which does not hold it");
    fixtures::write_file(dir.file("model.safetensors.index.json"),
                         R"({"weight_map": {"model.norm.weight": "../x.safetensors"}})");
    CHECK_HAS(checkpoint_error(dir.path()), "must be a file inside the checkpoint directory");
  }
  {
    fixtures::TempDir dir;
    fixtures::write_file(dir.file("config.json"), fixtures::qwen2_config_json(m, "1"));
    CHECK_HAS(checkpoint_error(dir.path()), "neither model.safetensors nor model.safetensors.index.json");
    fixtures::write_file(dir.file("config.json"), "{\"model_type\": \"qwen2\", \"vocab_size\": 10}");
    CHECK_HAS(checkpoint_error(dir.path()), "missing \"hidden_size\"");
    fixtures::write_file(dir.file("config.json"), "{\"model_type\": \"llama\"}");
    CHECK_HAS(checkpoint_error(dir.path()), "model_type \"llama\" is not supported");
    // Shape errors are named directly, not as a wrong tensor size later.
    const std::string shape = R"({"model_type": "qwen2", "vocab_size": 10, "hidden_size": 100,
        "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3)";
    fixtures::write_file(dir.file("config.json"), shape + "}");
    CHECK_HAS(checkpoint_error(dir.path()), "hidden_size (100) is not divisible by num_attention_heads (3)");
    fixtures::write_file(dir.file("config.json"), shape + R"(, "head_dim": 33})");
    CHECK_HAS(checkpoint_error(dir.path()), "head_dim 33 is odd");
    fixtures::write_file(dir.file("config.json"), shape + R"(, "head_dim": 32, "num_key_value_heads": 2})");
    CHECK_HAS(checkpoint_error(dir.path()), "num_attention_heads (3) is not a multiple of num_key_value_heads (2)");
  }
  {
    // A weight in an integer dtype is named, not silently converted.
    fixtures::TempDir dir;
    fixtures::CheckpointOptions opt;
    opt.as_i32 = "model.norm.weight";
    fixtures::write_checkpoint(dir.path(), m, *random, opt);
    CHECK_HAS(checkpoint_error(dir.path()),
              "tensor \"model.norm.weight\" has dtype I32; only F32, F16 and BF16 can be loaded");
  }
  CHECK_HAS(checkpoint_error("/nonexistent-lmdref-dir"), "neither random:<preset> nor a checkpoint directory");
}

TEST_MAIN("test_safetensors")
