#include "check.h"
#include "lmdrive_shim/config.h"

using namespace lmdrive::shim;

TEST_CASE(trt_config_defaults) {
  TrtConfig c = parse_trt_config(R"({"engine_dir": "/models/qwen-engine"})");
  CHECK_EQ(c.engine_dir, std::string("/models/qwen-engine"));
  CHECK(c.comm_mode == TrtCommMode::Leader);
  CHECK(!c.enable_block_reuse);  // block reuse is off unless asked for
  CHECK(c.kv_cache_fraction > 0.89f && c.kv_cache_fraction < 0.91f);
  CHECK(!c.tp.has_value());
  CHECK(!c.max_seq_len.has_value());
  CHECK(c.eos_ids.empty());
}

TEST_CASE(trt_config_all_keys) {
  TrtConfig c = parse_trt_config(R"({
    "engine_dir": "e", "tp": 2, "devices": [2, 3], "comm_mode": "orchestrator",
    "worker_path": "/opt/trt/bin/executorWorker", "kv_cache_fraction": 0.5,
    "enable_block_reuse": true, "max_seq_len": 21504, "max_num_tokens": 8192,
    "eos_ids": [151645, 151643], "log_level": "info", "recv_poll_ms": 0})");
  CHECK_EQ(*c.tp, 2);
  CHECK_EQ(c.devices.size(), size_t(2));
  CHECK_EQ(c.devices[1], 3);
  CHECK(c.comm_mode == TrtCommMode::Orchestrator);
  CHECK_EQ(c.worker_path, std::string("/opt/trt/bin/executorWorker"));
  CHECK(c.enable_block_reuse);
  CHECK_EQ(*c.max_seq_len, 21504);
  CHECK_EQ(*c.max_num_tokens, 8192);
  CHECK_EQ(c.eos_ids[0], 151645);
  CHECK_EQ(c.log_level, std::string("info"));
  CHECK_EQ(c.recv_poll_ms, 0);
}

TEST_CASE(trt_config_accepts_model_alias_single_eos_and_nulls) {
  TrtConfig c = parse_trt_config(R"({"model": "dir", "eos_ids": 2, "tp": null})");
  CHECK_EQ(c.engine_dir, std::string("dir"));
  CHECK_EQ(c.eos_ids.size(), size_t(1));
  CHECK(!c.tp.has_value());
}

TEST_CASE(trt_config_errors) {
  CHECK_THROWS(parse_trt_config("{}"), LMD_ERR_INVALID, "\"engine_dir\" is required");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","engin_dir":"x"})"), LMD_ERR_INVALID,
               "unknown key \"engin_dir\"");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","tp":"2"})"), LMD_ERR_INVALID, "expected number");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","tp":1.5})"), LMD_ERR_INVALID, "expected an integer");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","tp":0})"), LMD_ERR_INVALID, "out of range");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","comm_mode":"mpi"})"), LMD_ERR_INVALID, "leader");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","kv_cache_fraction":1.5})"), LMD_ERR_INVALID, "fraction");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","worker_path":"w"})"), LMD_ERR_INVALID, "orchestrator");
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","log_level":"loud"})"), LMD_ERR_INVALID, "log_level");
  CHECK_THROWS(parse_trt_config("[1]"), LMD_ERR_INVALID, "JSON object");
  CHECK_THROWS(parse_trt_config("{"), LMD_ERR_INVALID, "trtllm config");
}

// The layout trtllm-build writes (TensorRT-LLM >= 0.9): fields trimmed.
static const char* kEngineConfig = R"({
  "version": "1.2.0",
  "pretrained_config": {
    "architecture": "Qwen2ForCausalLM", "dtype": "float16", "vocab_size": 152064,
    "mapping": {"world_size": 2, "tp_size": 2, "pp_size": 1}
  },
  "build_config": {
    "max_input_len": 20480, "max_seq_len": 21504, "max_batch_size": 1, "max_num_tokens": 8192,
    "plugin_config": {"tokens_per_block": 32, "paged_kv_cache": true}
  }
})";

TEST_CASE(trt_engine_config_facts) {
  TrtEngineFacts f = parse_trt_engine_config(kEngineConfig);
  CHECK_EQ(f.built_by_version, std::string("1.2.0"));
  CHECK_EQ(f.vocab_size, 152064);
  CHECK_EQ(f.dtype, std::string("fp16"));
  CHECK_EQ(f.tp, 2);
  CHECK_EQ(f.pp, 1);
  CHECK_EQ(f.max_input_len, 20480);
  CHECK_EQ(f.max_seq_len, 21504);
  CHECK_EQ(f.max_num_tokens, 8192);
  CHECK_EQ(f.tokens_per_block, 32);
}

TEST_CASE(trt_engine_config_rejects_old_layout) {
  CHECK_THROWS(parse_trt_engine_config(R"({"builder_config": {}, "plugin_config": {}})"), LMD_ERR_INVALID,
               "not a trtllm-build");
}

TEST_CASE(tm_config_defaults_and_keys) {
  TmConfig c = parse_tm_config(R"({"model_dir": "/ws"})");
  CHECK_EQ(c.model_dir, std::string("/ws"));
  CHECK(!c.session_len.has_value());
  CHECK_EQ(c.data_type, std::string("auto"));
  CHECK_EQ(c.communicator, std::string("nccl"));
  CHECK(!c.enable_prefix_caching);
  TmConfig d = parse_tm_config(R"({"model_dir": "/ws", "tp": 2, "devices": [0, 1], "session_len": 21504,
      "cache_max_entry_count": 0.9, "eos_ids": [151645, 151643], "data_type": "bfloat16",
      "max_prefill_token_num": 4096, "communicator": "native", "log_level": "warning"})");
  CHECK_EQ(*d.session_len, 21504);
  CHECK_EQ(d.data_type, std::string("bf16"));
  CHECK_EQ(d.max_prefill_token_num, 4096);
  CHECK_EQ(d.eos_ids.size(), size_t(2));
}

TEST_CASE(tm_config_errors) {
  CHECK_THROWS(parse_tm_config("{}"), LMD_ERR_INVALID, "\"model_dir\" is required");
  CHECK_THROWS(parse_tm_config(R"({"model_dir":"w","session_len":1})"), LMD_ERR_INVALID, "out of range");
  CHECK_THROWS(parse_tm_config(R"({"model_dir":"w","data_type":"fp8"})"), LMD_ERR_INVALID, "data_type");
  CHECK_THROWS(parse_tm_config(R"({"model_dir":"w","cache_max_entry_count":0})"), LMD_ERR_INVALID, "> 0");
  CHECK_THROWS(parse_tm_config(R"({"model_dir":"w","engine_dir":"x"})"), LMD_ERR_INVALID, "unknown key");
}

TEST_CASE(session_len_is_always_chosen_and_named) {
  SessionLenChoice a = choose_session_len(21504, 32768, 32768);
  CHECK_EQ(a.value, 21504);
  CHECK_EQ(a.source, std::string("session_len=21504 (lmdrive config)"));
  SessionLenChoice b = choose_session_len(std::nullopt, 8192, 32768);
  CHECK_EQ(b.value, 8192);
  CHECK(b.source.find("workspace") != std::string::npos);
  SessionLenChoice c = choose_session_len(std::nullopt, 0, 32768);
  CHECK_EQ(c.value, 32768);
  CHECK(c.source.find("max_position_embeddings") != std::string::npos);
  CHECK_THROWS(choose_session_len(std::nullopt, 0, 0), LMD_ERR_INVALID, "set \"session_len\"");
}

TEST_CASE(tm_dtype_choice) {
  CHECK_EQ(choose_tm_dtype("auto", "bfloat16"), std::string("bf16"));
  CHECK_EQ(choose_tm_dtype("auto", "fp16"), std::string("fp16"));
  CHECK_EQ(choose_tm_dtype("auto", "int4"), std::string("fp16"));
  CHECK_EQ(choose_tm_dtype("bf16", "fp16"), std::string("bf16"));
  CHECK_THROWS(choose_tm_dtype("auto", "fp32"), LMD_ERR_INVALID, "weight_type");
}

TEST_CASE(device_lists) {
  auto d = resolve_devices({}, 2, false, "x");
  CHECK_EQ(d.size(), size_t(2));
  CHECK_EQ(d[1], 1);
  CHECK_EQ(resolve_devices({4, 5}, 2, false, "x")[0], 4);
  CHECK_THROWS(resolve_devices({0}, 2, false, "x"), LMD_ERR_INVALID, "one device per rank");
  CHECK_THROWS(resolve_devices({1, 1}, 2, false, "x"), LMD_ERR_INVALID, "twice");
  CHECK_THROWS(resolve_devices({2, 3}, 2, true, "turbomind"), LMD_ERR_INVALID, "CUDA_VISIBLE_DEVICES");
  CHECK_EQ(resolve_devices({0, 1}, 2, true, "turbomind")[1], 1);
}

TEST_CASE(concurrency_keys) {
  TrtConfig t = parse_trt_config(R"({"engine_dir": "e", "max_batch": 32, "enable_chunked_context": true})");
  CHECK_EQ(*t.max_batch, 32);
  CHECK(t.enable_chunked_context);
  CHECK(!parse_trt_config(R"({"engine_dir": "e"})").max_batch.has_value());
  CHECK_THROWS(parse_trt_config(R"({"engine_dir":"e","max_batch":0})"), LMD_ERR_INVALID, "out of range");
  CHECK_EQ(choose_trt_max_batch(std::nullopt, 16), 16);  // the engine's build-time limit
  CHECK_EQ(choose_trt_max_batch(std::nullopt, 0), 1);    // unknown: one at a time
  CHECK_EQ(choose_trt_max_batch(8, 16), 8);
  CHECK_THROWS(choose_trt_max_batch(64, 16), LMD_ERR_INVALID, "--max_batch_size 64");
  TmConfig m = parse_tm_config(R"({"model_dir": "w", "max_batch": 8})");
  CHECK_EQ(m.max_batch, 8);
  CHECK_EQ(parse_tm_config(R"({"model_dir": "w"})").max_batch, 64);
  CHECK_THROWS(parse_tm_config(R"({"model_dir":"w","max_batch":-1})"), LMD_ERR_INVALID, "out of range");
}

TEST_MAIN("shimcommon config")
