// liblmdrive_turbomind.so: lmdrive's ABI (native/include/lmdrive.h) over
// LMDeploy TurboMind's C++ engine, the pure C++ route of LMDeploy <= v0.7.3:
// LlamaTritonModel loads a workspace written by `lmdeploy convert` and runs
// tensor parallelism with one thread per GPU (NCCL). From v0.8 on the C++
// side no longer reads weights from disk; use lmdrive's `lmdeploy` Python
// worker engine there (docs/engines.md).
//
// Built inside LMDeploy's own CMake tree (its libraries are static and not
// installed), so it shares LMDeploy's compiler flags and C++ ABI.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lmdrive.h"
#include "lmdrive_shim/api.h"
#include "lmdrive_shim/config.h"
#include "lmdrive_shim/request.h"
#include "lmdrive_shim/util.h"
#include "src/turbomind/engine/model_request.h"
#include "src/turbomind/engine/request.h"
#include "src/turbomind/triton_backend/llama/LlamaTritonModel.h"
#include "src/turbomind/triton_backend/transformer_triton_backend.hpp"
#include "src/turbomind/utils/Tensor.h"

namespace tmd = turbomind;
using namespace lmdrive::shim;

#ifndef LMDRIVE_TURBOMIND_VERSION
#define LMDRIVE_TURBOMIND_VERSION "0.7.3"
#endif

namespace {

// TurboMind 0.7.3 accepts at most this many stop ids in total per request
// (LlamaBatch::kMaxStopBadWordsLen).
constexpr size_t kMaxStopIds = 32;

struct Workspace {
  std::string weights_dir;  // holds config.yaml and the weight files
  YAML::Node doc;
  int tp = 1;
  int vocab_size = 0;
  int workspace_session_len = 0;
  int max_position_embeddings = 0;
  std::string weight_type;
  std::string model_name;
};

Workspace load_workspace(const std::string& model_dir) {
  Workspace w;
  if (file_exists(model_dir + "/triton_models/weights/config.yaml")) {
    w.weights_dir = model_dir + "/triton_models/weights";
  } else if (file_exists(model_dir + "/config.yaml")) {
    w.weights_dir = model_dir;
  } else {
    fail(LMD_ERR_INVALID, "turbomind: " + model_dir +
                              " is not an `lmdeploy convert` workspace (no triton_models/weights/config.yaml)");
  }
  try {
    w.doc = YAML::LoadFile(w.weights_dir + "/config.yaml");
    const YAML::Node model = w.doc["model_config"];
    const YAML::Node attn = w.doc["attention_config"];
    if (!model) fail(LMD_ERR_INVALID, "turbomind: config.yaml has no model_config");
    w.tp = model["tp"].as<int>(1);
    w.vocab_size = model["vocab_size"].as<int>(0);
    w.workspace_session_len = model["session_len"].as<int>(0);
    w.weight_type = model["weight_type"].as<std::string>("");
    w.model_name = model["model_name"].as<std::string>("");
    if (attn) w.max_position_embeddings = attn["max_position_embeddings"].as<int>(0);
  } catch (const YAML::Exception& e) {
    fail(LMD_ERR_INVALID, std::string("turbomind: reading config.yaml: ") + e.what());
  }
  return w;
}

void set_log_level(const std::string& level) {
  if (level.empty() || std::getenv("TM_LOG_LEVEL")) return;
  // TurboMind's logger reads TM_LOG_LEVEL: TRACE, DEBUG, INFO, WARNING, ERROR.
  std::string up = level == "verbose" ? "DEBUG" : level;
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  setenv("TM_LOG_LEVEL", up.c_str(), 0);
}

// Runs fn(device) on one thread per device and waits for all. TurboMind's
// per-device steps synchronise with each other through barriers, so they
// must run concurrently.
template <class F>
void per_device(int n, F&& fn) {
  std::vector<std::thread> threads;
  for (int d = 0; d < n; ++d) threads.emplace_back([&fn, d] { fn(d); });
  for (auto& t : threads) t.join();
}

class TmEngine;

class TmStream : public ShimStream {
public:
  TmStream(TmEngine& engine, const RequestSpec& req, StopPlan plan, Clamp clamp);
  ~TmStream() override { wait_engine_released(); }

  // Submits the request through a model instance of its own: TurboMind's
  // batch takes requests from every instance (in-flight batching).
  void submit(std::unique_ptr<tmd::ModelRequest> mr, uint64_t session_id);

  void request_cancel() noexcept override {
    std::lock_guard<std::mutex> lk(mu_);
    if (released_ || !model_request_) return;
    try {
      model_request_->Cancel();
    } catch (...) {
    }
  }

  void wait_engine_released() noexcept override {
    // After a final status TurboMind never calls back again (its Python
    // binding relies on the same contract), so the stream can go. A request
    // that never reached TurboMind has nothing to wait for.
    if (submitted_.load()) queue.wait_completed(-1);
    std::lock_guard<std::mutex> lk(mu_);
    released_ = true;
  }

private:
  void on_signal() noexcept;

  TmEngine& engine_;
  RequestSpec req_;
  StopPlan plan_;
  Clamp clamp_;
  std::mutex mu_;
  bool released_ = false;
  std::unique_ptr<tmd::ModelRequest> owned_request_;  // outlives the request's last callback
  tmd::ModelRequest* model_request_ = nullptr;
  std::shared_ptr<tmd::AtomicRequestState> state_;
  std::shared_ptr<std::unordered_map<std::string, tmd::ManagedTensor>> outputs_;
  const int* output_ids_ = nullptr;
  int prev_len_ = 0;
  bool final_seen_ = false;
  std::atomic<bool> submitted_{false};
};

class TmEngine : public ShimEngine {
public:
  explicit TmEngine(const std::string& json) {
    cfg_ = parse_tm_config(json);
    set_log_level(cfg_.log_level);
    ws_ = load_workspace(cfg_.model_dir);
    if (cfg_.tp && *cfg_.tp != ws_.tp) {
      fail(LMD_ERR_INVALID, strf("turbomind: config tp=%d but the workspace was converted with tp=%d (TP is "
                                 "fixed by `lmdeploy convert --tp`)",
                                 *cfg_.tp, ws_.tp));
    }
    devices_ = resolve_devices(cfg_.devices, ws_.tp, true, "turbomind");
    session_ = choose_session_len(cfg_.session_len, ws_.workspace_session_len, ws_.max_position_embeddings);
    dtype_ = choose_tm_dtype(cfg_.data_type, ws_.weight_type);

    // The YAML handed to LlamaTritonModel: the workspace's own config with
    // session_len set explicitly and an engine_config section (what LMDeploy's
    // Python front end adds from TurbomindEngineConfig).
    YAML::Node doc = YAML::Clone(ws_.doc);
    doc["model_config"]["session_len"] = session_.value;
    YAML::Node eng;
    eng["max_batch_size"] = cfg_.max_batch;
    eng["max_prefill_token_num"] = cfg_.max_prefill_token_num;
    eng["max_context_token_num"] = 0;
    eng["cache_max_entry_count"] = cfg_.cache_max_entry_count;
    eng["cache_chunk_size"] = -1;
    eng["enable_prefix_caching"] = cfg_.enable_prefix_caching;
    eng["num_tokens_per_iter"] = cfg_.max_prefill_token_num;
    eng["max_prefill_iters"] = (session_.value + cfg_.max_prefill_token_num - 1) / cfg_.max_prefill_token_num;
    eng["communicator"] = cfg_.communicator;
    eng["quant_policy"] = 0;  // no KV-cache quantisation
    doc["engine_config"] = eng;
    YAML::Emitter out;
    out << doc;
    yaml_ = out.c_str();

    auto no_ffi = []() { return std::shared_ptr<void>{}; };
    const int tp = ws_.tp;
    if (dtype_ == "bf16") {
#ifdef ENABLE_BF16
      model_ = std::make_unique<tmd::LlamaTritonModel<__nv_bfloat16>>(tp, 1, 0, ws_.weights_dir, yaml_, no_ffi);
#else
      fail(LMD_ERR_UNSUPPORTED, "turbomind was built without bf16 support (ENABLE_BF16)");
#endif
    } else {
      model_ = std::make_unique<tmd::LlamaTritonModel<half>>(tp, 1, 0, ws_.weights_dir, yaml_, no_ffi);
    }
    // These steps are noexcept in TurboMind: a failure there aborts the
    // process (the lmdrive runner reports it as an engine crash).
    per_device(tp, [&](int d) { model_->createSharedWeights(d, d); });
    per_device(tp, [&](int d) { model_->processWeights(d, d); });
    per_device(tp, [&](int d) { model_->createEngine(d, d); });
  }

  ~TmEngine() override {
    model_.reset();  // shuts the gateway down and frees each device's engine
  }

  void fill_info(lmd_info& info) override {
    copy_cstr(info.backend, sizeof info.backend, "turbomind");
    copy_cstr(info.version, sizeof info.version, LMDRIVE_TURBOMIND_VERSION);
    copy_cstr(info.model, sizeof info.model, cfg_.model_dir);
    copy_cstr(info.dtype, sizeof info.dtype, dtype_);
    info.vocab_size = static_cast<uint32_t>(ws_.vocab_size);
    info.tp_size = static_cast<uint32_t>(ws_.tp);
    set_info_ids(info, devices_, cfg_.eos_ids);
    // session_len bounds prompt + output; the length limit is one less.
    info.max_seq_len = static_cast<uint32_t>(session_.value);
    info.max_input_len = static_cast<uint32_t>(session_.value);
    info.caps = LMD_CAP_SAMPLING;
    // In-flight batching; prompts are prefilled max_prefill_token_num tokens
    // an iteration beside the running requests.
    info.max_sequences = static_cast<uint32_t>(cfg_.max_batch);
    info.batch_flags = LMD_BATCH_JOIN | LMD_BATCH_CHUNKED_PREFILL;
    info.max_step_tokens = static_cast<uint32_t>(cfg_.max_prefill_token_num);
  }

  int max_streams() const override { return cfg_.max_batch; }

  std::unique_ptr<ShimStream> start(const RequestSpec& req) override {
    if (!req.ignore_eos && cfg_.eos_ids.empty()) {
      fail(LMD_ERR_INVALID, "ignore_eos is off but the turbomind config has no \"eos_ids\"");
    }
    for (int32_t id : req.prompt) {
      if (ws_.vocab_size > 0 && id >= ws_.vocab_size) {
        fail(LMD_ERR_INVALID, strf("prompt id %d >= vocab_size %d", id, ws_.vocab_size));
      }
    }
    Clamp clamp = tm_clamp(static_cast<uint32_t>(req.prompt.size()), req.max_new_tokens,
                           static_cast<uint32_t>(session_.value), session_.source);
    StopPlan plan = plan_tm_stops(req, cfg_.eos_ids);
    size_t total = 0;
    for (const auto& w : plan.words) total += w.size();
    if (total > kMaxStopIds) {
      fail(LMD_ERR_UNSUPPORTED, strf("%zu stop ids in total (stop sequences plus EOS ids); TurboMind 0.7.3 "
                                     "takes at most %zu",
                                     total, kMaxStopIds));
    }
    auto s = std::make_unique<TmStream>(*this, req, std::move(plan), clamp);
    s->submit(model_->createModelInstance(0), session_id_.fetch_add(1) + 1);
    return s;
  }

  const TmConfig& config() const { return cfg_; }
  uint32_t session_len() const { return static_cast<uint32_t>(session_.value); }

private:
  TmConfig cfg_;
  Workspace ws_;
  std::vector<int> devices_;
  SessionLenChoice session_;
  std::string dtype_;
  std::string yaml_;
  std::unique_ptr<tmd::AbstractTransformerModel> model_;
  std::atomic<uint64_t> session_id_{0};
};

TmStream::TmStream(TmEngine& engine, const RequestSpec& req, StopPlan plan, Clamp clamp)
    : ShimStream(req), engine_(engine), req_(req), plan_(std::move(plan)), clamp_(clamp) {}

void TmStream::submit(std::unique_ptr<tmd::ModelRequest> owned, uint64_t session_id) {
  tmd::ModelRequest& mr = *owned;
  // input_ids: a 1-D int32 host tensor; the copy lives as long as the request.
  auto ids = std::make_shared<std::vector<int>>(req_.prompt.begin(), req_.prompt.end());
  tmd::ManagedTensor input;
  input.tensor = tmd::Tensor{tmd::MEMORY_CPU, tmd::TYPE_INT32, {ids->size()}, ids->data()};
  input.data_holder = ids;
  auto inputs = std::make_shared<std::unordered_map<std::string, tmd::ManagedTensor>>();
  inputs->emplace("input_ids", std::move(input));

  tmd::GenerationConfig g;
  g.max_new_tokens = static_cast<int>(req_.max_new_tokens);
  g.min_new_tokens = static_cast<int>(req_.min_new_tokens);
  // eos_ids only feed the min_new_tokens mask; stopping is stop_ids alone.
  g.eos_ids.assign(engine_.config().eos_ids.begin(), engine_.config().eos_ids.end());
  if (!plan_.words.empty()) flatten_words(plan_.words, g.stop_ids[0], g.stop_ids[1]);
  if (req_.temperature <= 0.f) {
    g.top_k = 1;  // greedy
    g.top_p = 1.f;
    g.temperature = 1.f;
  } else {
    g.top_k = static_cast<int>(req_.top_k);
    g.top_p = req_.top_p;
    g.temperature = req_.temperature;
  }
  g.random_seed = req_.seed;

  tmd::ModelRequest::InputParam param{};
  param.tensors = inputs;
  param.session = tmd::SessionParam{session_id, 0, true, true, false};
  param.gen_cfg = g;
  param.stream_output = true;

  prev_len_ = static_cast<int>(req_.prompt.size());
  {
    std::lock_guard<std::mutex> lk(mu_);
    owned_request_ = std::move(owned);
    model_request_ = &mr;
  }
  // The callback runs on TurboMind's signal thread. Taking the state there
  // (instead of on a consumer thread) is what makes TurboMind call back on
  // every update: it only signals when the previous state was consumed.
  // Forward() may call back before it returns, so the state pointer is not
  // known yet at the first call; on_signal waits for it under mu_.
  std::unique_lock<std::mutex> lk(mu_);
  tmd::ModelRequest::OutputParam out = mr.Forward(param, [this] { on_signal(); });
  submitted_.store(true);
  state_ = out.state;
  outputs_ = out.tensors;
  output_ids_ = outputs_->at("output_ids")->getPtr<int>();
  lk.unlock();
  on_signal();  // pick up a state that arrived before state_ was set
}

void TmStream::on_signal() noexcept {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    if (!state_ || final_seen_) return;
    std::unique_ptr<tmd::RequestState> st = state_->exchange(nullptr);
    if (!st) return;
    const int64_t seen = now_ns();
    int seq_len = st->seq_len;
    if (seq_len > prev_len_) {
      std::vector<int32_t> ids(output_ids_ + prev_len_, output_ids_ + seq_len);
      queue.push(ids.data(), nullptr, nullptr, ids.size(), seen);
      prev_len_ = seq_len;
    }
    if (st->status == tmd::Request::kOk) return;
    final_seen_ = true;
    ResultCore core;
    core.clamp = clamp_;
    core.ignore_eos_applied = req_.ignore_eos;
    core.stop_ids = plan_.single_ids;
    core.cached_prompt_tokens = engine_.config().enable_prefix_caching ? -1 : 0;
    core.finish = map_tm_finish(st->status, queue.generated(), plan_, engine_.config().eos_ids, req_.ignore_eos,
                                clamp_, static_cast<uint32_t>(req_.prompt.size()), engine_.session_len());
    queue.complete(std::move(core));
  } catch (...) {
    ResultCore core;
    core.clamp = clamp_;
    core.finish.reason = LMD_FINISH_ERROR;
    core.finish.raw_text = "exception";
    core.finish.note = "exception while reading TurboMind's output";
    final_seen_ = true;
    queue.complete(std::move(core));
  }
}

std::unique_ptr<ShimEngine> make_engine(const std::string& json) { return std::make_unique<TmEngine>(json); }

void library_info(lmd_info& info) {
  copy_cstr(info.backend, sizeof info.backend, "turbomind");
  copy_cstr(info.version, sizeof info.version, LMDRIVE_TURBOMIND_VERSION);
  info.caps = LMD_CAP_SAMPLING;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const lmd_api* lmdrive_get_api(void) {
  return api_table<&make_engine, &library_info>();
}
