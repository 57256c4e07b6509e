// liblmdrive_trtllm.so: lmdrive's ABI (native/include/lmdrive.h) over
// TensorRT-LLM's C++ Executor (tensorrt_llm::executor::Executor), for
// releases that still ship it (up to 1.3.x). Engines come from trtllm-build.
//
// Tensor parallelism needs one MPI rank per GPU. Two ways are supported:
//  - leader mode: lmdrive starts the runner under `mpirun -n <tp>`; every
//    rank loads this library and calls create(). Rank 0 gets a working engine;
//    on other ranks create() serves as a worker until rank 0 shuts down, then
//    returns an engine that refuses start() (see docs/engines.md).
//  - orchestrator mode: a single runner process spawns <tp> executorWorker
//    processes through MPI_Comm_spawn and talks to them over MPI.
#include <dlfcn.h>
#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lmdrive.h"
#include "lmdrive_shim/api.h"
#include "lmdrive_shim/config.h"
#include "lmdrive_shim/request.h"
#include "lmdrive_shim/util.h"
#include "tensorrt_llm/executor/executor.h"

// Declared here instead of including tensorrt_llm/plugins/api/tllmPlugin.h,
// which would pull in TensorRT's NvInferRuntime.h for one prototype.
// Defined in libnvinfer_plugin_tensorrt_llm.so.
extern "C" bool initTrtLlmPlugins(void* logger, char const* libNamespace);

namespace tle = tensorrt_llm::executor;
using namespace lmdrive::shim;

namespace {

int env_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return 0;
}

// executorWorker lives in <package>/bin next to <package>/libs/libtensorrt_llm.so.
std::string default_worker_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&tle::version), &info) && info.dli_fname) {
    std::string lib = info.dli_fname;
    auto slash = lib.rfind('/');
    if (slash != std::string::npos) {
      std::string libdir = lib.substr(0, slash);
      auto up = libdir.rfind('/');
      if (up != std::string::npos) {
        std::string cand = libdir.substr(0, up) + "/bin/executorWorker";
        if (file_exists(cand)) return cand;
      }
    }
  }
  return "";
}

void set_log_level(const std::string& level) {
  if (level.empty() || std::getenv("TLLM_LOG_LEVEL")) return;
  // TensorRT-LLM's logger reads TLLM_LOG_LEVEL (ERROR/WARNING/INFO/VERBOSE/DEBUG/TRACE).
  std::string up;
  for (char c : level) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  setenv("TLLM_LOG_LEVEL", up.c_str(), 0);
}

int64_t tp_ns(const tle::RequestPerfMetrics::TimePoint& tp) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  return ns > 0 ? steady_ns_to_monotonic(ns) : -1;
}

class TrtEngine;

class TrtStream : public ShimStream {
public:
  TrtStream(TrtEngine& engine, const RequestSpec& req, tle::IdType id, StopPlan plan, Clamp clamp);
  ~TrtStream() override { wait_engine_released(); }

  void request_cancel() noexcept override {
    // The reader thread issues cancelRequest() on its next wake-up (<= 10 ms).
    cancel_requested.store(true);
  }
  void wait_engine_released() noexcept override {
    if (reader_.joinable()) reader_.join();
  }

private:
  void read_loop() noexcept;
  void finish_with(ResultCore core) noexcept;
  ResultCore base_core() const;

  TrtEngine& engine_;
  RequestSpec req_;
  tle::IdType id_;
  StopPlan plan_;
  Clamp clamp_;
  std::thread reader_;
};

class TrtEngine : public ShimEngine {
public:
  explicit TrtEngine(const std::string& json) {
    cfg_ = parse_trt_config(json);
    set_log_level(cfg_.log_level);

    const std::string cfg_path = cfg_.engine_dir + "/config.json";
    facts_ = parse_trt_engine_config(read_file(cfg_path));
    if (cfg_.tp && *cfg_.tp != facts_.tp) {
      fail(LMD_ERR_INVALID, strf("config tp=%d but the engine in %s was built for tp=%d", *cfg_.tp,
                                 cfg_.engine_dir.c_str(), facts_.tp));
    }
    if (facts_.pp != 1) fail(LMD_ERR_UNSUPPORTED, "pipeline-parallel engines (pp_size > 1) are not supported");
    devices_ = resolve_devices(cfg_.devices, facts_.tp, false, "trtllm");
    max_seq_len_ = cfg_.max_seq_len ? *cfg_.max_seq_len : facts_.max_seq_len;
    seq_len_source_ = cfg_.max_seq_len ? "lmdrive config override" : "engine config.json";

    initTrtLlmPlugins(nullptr, "tensorrt_llm");

    tle::KvCacheConfig kv;
    kv.setEnableBlockReuse(cfg_.enable_block_reuse);
    kv.setFreeGpuMemoryFraction(cfg_.kv_cache_fraction);

    // In-flight batching: up to max_batch requests share the executor's
    // iterations; a request that arrives joins the running batch.
    max_batch_ = choose_trt_max_batch(cfg_.max_batch, facts_.max_batch_size);
    tle::ExecutorConfig ec;
    ec.setMaxBeamWidth(1);
    ec.setMaxBatchSize(max_batch_);
    if (cfg_.max_num_tokens) ec.setMaxNumTokens(*cfg_.max_num_tokens);
    ec.setEnableChunkedContext(cfg_.enable_chunked_context);
    ec.setKvCacheConfig(kv);
    ec.setSchedulerConfig(tle::SchedulerConfig(tle::CapacitySchedulerPolicy::kGUARANTEED_NO_EVICT));

    std::vector<tle::SizeType32> devs(devices_.begin(), devices_.end());
    if (cfg_.comm_mode == TrtCommMode::Orchestrator) {
      std::string worker = cfg_.worker_path.empty() ? default_worker_path() : cfg_.worker_path;
      if (worker.empty() || !file_exists(worker)) {
        fail(LMD_ERR_INVALID, "orchestrator mode needs executorWorker: set \"worker_path\" (it is "
                              "<site-packages>/tensorrt_llm/bin/executorWorker in the wheel)");
      }
      worker_path_ = worker;
      tle::OrchestratorConfig orch(true, worker);
      ec.setParallelConfig(tle::ParallelConfig(tle::CommunicationType::kMPI,
                                               tle::CommunicationMode::kORCHESTRATOR, devs, std::nullopt, orch));
      ec.setRecvPollPeriodMs(cfg_.recv_poll_ms);
    } else {
      ec.setParallelConfig(
          tle::ParallelConfig(tle::CommunicationType::kMPI, tle::CommunicationMode::kLEADER, devs));
    }

    executor_ = std::make_unique<tle::Executor>(cfg_.engine_dir, tle::ModelType::kDECODER_ONLY, ec);

    if (!executor_->canEnqueueRequests()) {
      // Leader mode, rank > 0: this process only runs the worker loop. Stay
      // here until rank 0 shuts its executor down, so the caller can simply
      // destroy the engine and exit afterwards.
      worker_rank_ = env_rank();
      executor_->shutdown();
      executor_.reset();
    }
  }

  ~TrtEngine() override {
    try {
      if (executor_) executor_->shutdown();
    } catch (...) {
    }
  }

  void fill_info(lmd_info& info) override {
    copy_cstr(info.backend, sizeof info.backend, "trtllm");
    copy_cstr(info.version, sizeof info.version, tle::version());
    std::string model = cfg_.engine_dir;
    if (worker_rank_ >= 0) model = strf("mpi worker rank %d (finished): %s", worker_rank_, model.c_str());
    copy_cstr(info.model, sizeof info.model, model);
    copy_cstr(info.dtype, sizeof info.dtype, facts_.dtype);
    info.vocab_size = static_cast<uint32_t>(facts_.vocab_size);
    info.tp_size = static_cast<uint32_t>(facts_.tp);
    set_info_ids(info, devices_, cfg_.eos_ids);
    info.max_seq_len = static_cast<uint32_t>(max_seq_len_ > 0 ? max_seq_len_ : 0);
    info.max_input_len = static_cast<uint32_t>(facts_.max_input_len > 0 ? facts_.max_input_len : 0);
    info.caps = LMD_CAP_LOGPROBS | LMD_CAP_ENGINE_TIMING | LMD_CAP_SAMPLING;
    info.max_sequences = static_cast<uint32_t>(max_batch_);
    info.batch_flags = LMD_BATCH_JOIN | (cfg_.enable_chunked_context ? LMD_BATCH_CHUNKED_PREFILL : 0u);
    const int step_tokens = cfg_.max_num_tokens ? *cfg_.max_num_tokens : facts_.max_num_tokens;
    info.max_step_tokens = static_cast<uint32_t>(step_tokens > 0 ? step_tokens : 0);
  }

  int max_streams() const override { return max_batch_; }

  std::unique_ptr<ShimStream> start(const RequestSpec& req) override {
    Prepared p = prepare(req);
    tle::IdType id = executor_->enqueueRequest(p.request);
    return std::make_unique<TrtStream>(*this, req, id, std::move(p.plan), p.clamp);
  }

  // One enqueueRequests call: the executor schedules them together.
  std::vector<std::unique_ptr<ShimStream>> start_batch(const std::vector<RequestSpec>& reqs) override {
    std::vector<Prepared> prepared;
    std::vector<tle::Request> requests;
    for (size_t i = 0; i < reqs.size(); ++i) {
      try {
        prepared.push_back(prepare(reqs[i]));
      } catch (const ShimError& e) {
        fail(e.code(), strf("request %zu: %s", i, e.what()));
      }
      requests.push_back(prepared.back().request);
    }
    std::vector<tle::IdType> ids = executor_->enqueueRequests(requests);
    std::vector<std::unique_ptr<ShimStream>> out;
    for (size_t i = 0; i < reqs.size(); ++i)
      out.push_back(std::make_unique<TrtStream>(*this, reqs[i], ids[i], std::move(prepared[i].plan), prepared[i].clamp));
    return out;
  }

private:
  // A request checked and translated, not yet enqueued.
  struct Prepared {
    tle::Request request;
    StopPlan plan;
    Clamp clamp;
  };

  Prepared prepare(const RequestSpec& req) {
    if (!executor_) {
      fail(LMD_ERR_UNSUPPORTED, strf("this process was MPI rank %d, a leader-mode worker; only rank 0 takes "
                                     "requests",
                                     worker_rank_));
    }
    if (!req.ignore_eos && cfg_.eos_ids.empty()) {
      fail(LMD_ERR_INVALID, "ignore_eos is off but the trtllm config has no \"eos_ids\": TensorRT-LLM engines "
                            "do not know the model's EOS ids");
    }
    if (facts_.vocab_size > 0) {
      for (int32_t id : req.prompt) {
        if (id >= facts_.vocab_size) fail(LMD_ERR_INVALID, strf("prompt id %d >= vocab_size %d", id, facts_.vocab_size));
      }
    }
    Clamp clamp = trt_clamp(static_cast<uint32_t>(req.prompt.size()), req.max_new_tokens,
                            static_cast<uint32_t>(facts_.max_input_len > 0 ? facts_.max_input_len : 0),
                            static_cast<uint32_t>(max_seq_len_ > 0 ? max_seq_len_ : 0), seq_len_source_);
    StopPlan plan = plan_trt_stops(req, cfg_.eos_ids);

    tle::VecTokens input(req.prompt.begin(), req.prompt.end());
    // The clamped count is what the engine would lower maxTokens to anyway;
    // passing it keeps the engine's own warning out of the log.
    tle::Request r(std::move(input), static_cast<tle::SizeType32>(clamp.effective), /*streaming=*/true);

    tle::SamplingConfig sc(1);
    if (req.temperature <= 0.f) {
      sc.setTopK(1);  // greedy
    } else {
      if (req.top_k > 0) sc.setTopK(static_cast<tle::SizeType32>(req.top_k));
      if (req.top_p < 1.f) sc.setTopP(req.top_p);
      sc.setTemperature(req.temperature);
    }
    sc.setSeed(req.seed);
    if (req.min_new_tokens > 0) sc.setMinTokens(static_cast<tle::SizeType32>(req.min_new_tokens));
    r.setSamplingConfig(sc);

    tle::OutputConfig oc;
    oc.returnLogProbs = req.want_logprobs;
    oc.excludeInputFromOutput = true;
    oc.returnPerfMetrics = true;
    r.setOutputConfig(oc);

    // ignore_eos is "no endId": the decoder then uses -1, which is never sampled.
    if (plan.end_id >= 0) r.setEndId(plan.end_id);
    if (!plan.words.empty()) {
      std::list<tle::VecTokens> words;
      for (const auto& w : plan.words) words.emplace_back(w.begin(), w.end());
      r.setStopWords(words);
    }

    return Prepared{std::move(r), std::move(plan), clamp};
  }

public:
  tle::Executor& executor() { return *executor_; }
  const TrtConfig& config() const { return cfg_; }
  const TrtEngineFacts& facts() const { return facts_; }

private:
  TrtConfig cfg_;
  TrtEngineFacts facts_;
  std::vector<int> devices_;
  int max_seq_len_ = 0;
  std::string seq_len_source_;
  std::string worker_path_;
  int worker_rank_ = -1;
  int max_batch_ = 1;
  std::unique_ptr<tle::Executor> executor_;
};

TrtStream::TrtStream(TrtEngine& engine, const RequestSpec& req, tle::IdType id, StopPlan plan, Clamp clamp)
    : ShimStream(req), engine_(engine), req_(req), id_(id), plan_(std::move(plan)), clamp_(clamp) {
  reader_ = std::thread([this] { read_loop(); });
}

ResultCore TrtStream::base_core() const {
  ResultCore core;
  core.clamp = clamp_;
  core.ignore_eos_applied = plan_.end_id < 0 && req_.ignore_eos;
  core.stop_ids = plan_.single_ids;
  core.cached_prompt_tokens = engine_.config().enable_block_reuse ? -1 : 0;
  return core;
}

void TrtStream::finish_with(ResultCore core) noexcept {
  try {
    queue.complete(std::move(core));
  } catch (...) {
  }
}

void TrtStream::read_loop() noexcept {
  bool cancel_sent = false;
  std::vector<int32_t> ids;
  std::vector<float> lps;
  try {
    for (;;) {
      if (cancel_requested.load() && !cancel_sent) {
        engine_.executor().cancelRequest(id_);
        cancel_sent = true;
      }
      // Returns as soon as responses are ready; the timeout only bounds how
      // late a cancel() is forwarded.
      std::vector<tle::Response> responses =
          engine_.executor().awaitResponses(id_, std::chrono::milliseconds(10));
      if (responses.empty()) continue;
      const int64_t seen = now_ns();

      // Every token of this wake-up was first visible now: one bundle.
      ids.clear();
      lps.clear();
      bool any_lp = false;
      const tle::Response* final_resp = nullptr;
      for (const auto& resp : responses) {
        if (resp.hasError()) {
          ResultCore core = base_core();
          core.finish.reason = cancel_requested.load() ? LMD_FINISH_CANCELLED : LMD_FINISH_ERROR;
          core.finish.raw_status = -1;
          core.finish.raw_text = "error response";
          core.finish.note = resp.getErrorMsg();
          queue.push(ids.data(), any_lp ? lps.data() : nullptr, nullptr, ids.size(), seen);
          finish_with(std::move(core));
          return;
        }
        const tle::Result& res = resp.getResult();
        if (!res.outputTokenIds.empty()) {
          const auto& beam = res.outputTokenIds[0];
          const std::vector<float>* lp = nullptr;
          if (res.logProbs && !res.logProbs->empty() && (*res.logProbs)[0].size() == beam.size()) {
            lp = &(*res.logProbs)[0];
            any_lp = true;
          }
          for (size_t i = 0; i < beam.size(); ++i) {
            ids.push_back(beam[i]);
            lps.push_back(lp ? (*lp)[i] : std::numeric_limits<float>::quiet_NaN());
          }
        }
        if (res.isFinal) final_resp = &resp;
      }
      queue.push(ids.data(), any_lp ? lps.data() : nullptr, nullptr, ids.size(), seen);

      if (final_resp) {
        const tle::Result& res = final_resp->getResult();
        ResultCore core = base_core();
        int reason = res.finishReasons.empty() ? 0 : static_cast<int>(res.finishReasons[0]);
        core.finish = map_trt_finish(reason, queue.generated(), plan_, clamp_, cancel_requested.load());
        if (res.requestPerfMetrics) {
          const auto& pm = *res.requestPerfMetrics;
          core.engine_first_ns = tp_ns(pm.timingMetrics.firstTokenTime);
          core.engine_last_ns = tp_ns(pm.timingMetrics.lastTokenTime);
          int64_t arrival = tp_ns(pm.timingMetrics.arrivalTime);
          int64_t sched = tp_ns(pm.timingMetrics.firstScheduledTime);
          if (arrival > 0 && sched > 0) {
            core.detail = strf("engine queue %.3f ms", (sched - arrival) / 1e6);
          }
          int tpb = engine_.facts().tokens_per_block;
          if (engine_.config().enable_block_reuse && tpb > 0) {
            int64_t cached = static_cast<int64_t>(pm.kvCacheMetrics.numReusedBlocks) * tpb;
            if (cached > static_cast<int64_t>(req_.prompt.size())) cached = static_cast<int64_t>(req_.prompt.size());
            core.cached_prompt_tokens = static_cast<int32_t>(cached);
          }
        }
        if (req_.min_new_tokens > 0 && core.finish.reason == LMD_FINISH_STOP &&
            queue.n_generated() < req_.min_new_tokens) {
          core.detail += (core.detail.empty() ? "" : "; ");
          core.detail += "a stop word ended the request before min_new_tokens (TensorRT-LLM's minTokens masks "
                         "only the end id)";
        }
        finish_with(std::move(core));
        return;
      }
    }
  } catch (const std::exception& e) {
    ResultCore core = base_core();
    core.finish.reason = LMD_FINISH_ERROR;
    core.finish.raw_text = "exception";
    core.finish.note = e.what();
    finish_with(std::move(core));
  } catch (...) {
    ResultCore core = base_core();
    core.finish.reason = LMD_FINISH_ERROR;
    core.finish.raw_text = "exception";
    core.finish.note = "unknown exception in the response loop";
    finish_with(std::move(core));
  }
}

std::unique_ptr<ShimEngine> make_engine(const std::string& json) { return std::make_unique<TrtEngine>(json); }

void library_info(lmd_info& info) {
  copy_cstr(info.backend, sizeof info.backend, "trtllm");
  copy_cstr(info.version, sizeof info.version, tle::version());
  info.caps = LMD_CAP_LOGPROBS | LMD_CAP_ENGINE_TIMING | LMD_CAP_SAMPLING;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const lmd_api* lmdrive_get_api(void) {
  return api_table<&make_engine, &library_info>();
}
