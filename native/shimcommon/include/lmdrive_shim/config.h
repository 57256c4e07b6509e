// The config JSON each shim accepts in create(), and the facts a shim reads
// from the engine's own files. Parsing and validation live here, away from
// any SDK, so they are unit-tested on machines without one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lmdrive::shim {

// ---- TensorRT-LLM (native/trtllm) -----------------------------------------

enum class TrtCommMode { Leader, Orchestrator };

struct TrtConfig {
  std::string engine_dir;              // trtllm-build output: config.json + rank*.engine
  std::optional<int> tp;               // must match the engine when given
  std::vector<int> devices;            // CUDA device ids, one per rank; empty: 0..tp-1
  TrtCommMode comm_mode = TrtCommMode::Leader;
  std::string worker_path;             // executorWorker; empty: next to libtensorrt_llm.so
  float kv_cache_fraction = 0.9f;      // KvCacheConfig freeGpuMemoryFraction
  bool enable_block_reuse = false;     // prefix reuse between requests: off for benchmarks
  std::optional<int> max_seq_len;      // overrides the engine's value for clamp reporting
  std::optional<int> max_num_tokens;   // ExecutorConfig maxNumTokens
  std::optional<int> max_batch;        // requests in flight (ExecutorConfig maxBatchSize); default: the engine's
  bool enable_chunked_context = false; // prompts prefilled in chunks of maxNumTokens beside running requests
  std::vector<int> eos_ids;            // the model's EOS set; the engine knows none itself
  std::string log_level;               // sets TLLM_LOG_LEVEL when not already set
  int recv_poll_ms = 1;                // orchestrator receive poll period (0 = busy loop)
};

TrtConfig parse_trt_config(const std::string& json);

// What a trtllm-build engine directory's config.json says.
struct TrtEngineFacts {
  std::string built_by_version;  // top-level "version"
  int vocab_size = 0;
  std::string dtype;             // normalised: fp16 / bf16 / fp32 / fp8 / raw name
  int tp = 1;
  int pp = 1;
  int max_input_len = 0;         // 0: unknown
  int max_seq_len = 0;           // 0: unknown
  int max_batch_size = 0;
  int max_num_tokens = 0;
  int tokens_per_block = 0;
};

TrtEngineFacts parse_trt_engine_config(const std::string& json_text);

// How many requests the executor runs at once: the config's max_batch, else
// the engine's build-time max_batch_size (else 1). More than the engine was
// built for is refused with the trtllm-build flag that raises it.
int choose_trt_max_batch(std::optional<int> configured, int engine_max_batch_size);

// ---- TurboMind, LMDeploy v0.7.3 (native/turbomind) ------------------------

struct TmConfig {
  std::string model_dir;                 // `lmdeploy convert` workspace (or its triton_models/weights)
  std::optional<int> tp;                 // must match the workspace when given
  std::vector<int> devices;              // must be 0..tp-1 (TurboMind 0.7.3 uses device = rank)
  std::optional<int> session_len;        // explicit session_len; else workspace / max_position_embeddings
  float cache_max_entry_count = 0.8f;    // <1: fraction of free memory; >=1: block count
  std::vector<int> eos_ids;
  std::string data_type = "auto";        // auto | fp16 | bf16
  int max_prefill_token_num = 8192;
  int max_batch = 64;                    // requests in flight (engine_config max_batch_size)
  std::string communicator = "nccl";
  bool enable_prefix_caching = false;
  std::string log_level;                 // sets TM_LOG_LEVEL when not already set
};

TmConfig parse_tm_config(const std::string& json);

// Chooses TurboMind's session_len and names where it came from, so the value
// in use is always reported. Throws when nothing gives one.
struct SessionLenChoice {
  int value = 0;
  std::string source;  // e.g. "session_len=21504 (lmdrive config)"
};
SessionLenChoice choose_session_len(std::optional<int> configured, int workspace_session_len,
                                    int max_position_embeddings);

// Maps a workspace weight_type and the config's data_type to the compute
// type TurboMind will be instantiated with: "fp16" or "bf16".
std::string choose_tm_dtype(const std::string& config_data_type, const std::string& weight_type);

// Device list validation shared by both shims.
std::vector<int> resolve_devices(const std::vector<int>& devices, int tp, bool must_be_identity,
                                 const char* engine);

}  // namespace lmdrive::shim
