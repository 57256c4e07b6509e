#include "engine.h"

#include <algorithm>
#include <cstring>

#include "checkpoint.h"
#include "cuda/dispatch.h"
#include "host_memory.h"
#include "kit.h"
#include "lmdrive_shim/api.h"
#include "presets.h"
#include "stream.h"
#include <string>
#include "version.h"
#include "weight_source.h"

namespace lmdref {

namespace {

// Long paths keep their informative tail: "...Qwen2.5-14B-Instruct".
void copy_tail(char* dst, size_t cap, const std::string& s) {
  if (s.size() < cap) {
    copy_cstr(dst, cap, s);
  } else {
    copy_cstr(dst, cap, "..." + s.substr(s.size() - (cap - 4)));
  }
}

// Bytes of the CPU backend's weights: fp32, or int8 Linear weights with one
// fp32 scale per row (a quantized tied lm_head keeps an fp32 embedding too).
uint64_t host_weight_bytes(const ModelConfig& m, WeightFormat w, bool quantize_lm_head) {
  const uint64_t all = m.param_count() * sizeof(float);
  if (w != WeightFormat::Int8) return all;
  const uint64_t H = m.hidden, QKV = m.q_dim() + 2ull * m.kv_dim(), I = m.intermediate;
  const uint64_t linear = m.layers * (QKV * H + H * m.q_dim() + 3 * I * H);
  const uint64_t rows = m.layers * (QKV + H + 3 * I);
  uint64_t bytes = all - linear * 3 + rows * sizeof(float);
  if (quantize_lm_head) {
    const uint64_t head = uint64_t(m.vocab) * H;
    bytes += head + m.vocab * sizeof(float);
    if (!m.tied) bytes -= head * sizeof(float);
  }
  return bytes;
}

}  // namespace

std::shared_ptr<Engine> Engine::create(const char* config_json) {
  std::shared_ptr<Engine> e(new Engine);
  e->cfg_ = parse_engine_config(config_json);
  const EngineConfig& c = e->cfg_;

  BackendOptions opt;
  opt.device = backend_device(c);
  opt.dtype = c.dtype;
  opt.weights = parse_weight_format(c.weights);
  opt.quantize_lm_head = c.quantize_lm_head;
  opt.threads = c.threads;
  check_backend_options(opt);

  if (c.random) {
    const Preset* p = find_preset(c.preset);
    if (!p) invalid("unknown preset \"" + c.preset + "\"; valid presets: " + preset_names());
    e->model_ = preset_model_config(*p);
    e->description_ = c.model + " seed=" + std::to_string(c.seed);
  } else {
    if (!dir_exists(c.model))
      invalid("model \"" + c.model + "\" is neither random:<preset> nor a checkpoint directory");
    e->model_ = read_hf_model_config(c.model);
    e->description_ = c.model;
  }
  if (c.calibrate) e->description_ += " calibrate";

  // An override is the caller's and must make sense; the checkpoint's own
  // ids are reported as they are, even one the vocabulary cannot produce.
  e->eos_ = c.eos_override ? c.eos_ids : e->model_.eos_ids;
  if (e->eos_.size() > LMD_MAX_IDS) e->eos_.resize(LMD_MAX_IDS);
  if (c.eos_override)
    for (int32_t id : e->eos_)
      if (uint32_t(id) >= e->model_.vocab)
        invalid("config key \"eos_ids\": id " + std::to_string(id) +
                " is outside the vocabulary of " + std::to_string(e->model_.vocab));
  e->max_seq_len_ = c.max_seq_len ? c.max_seq_len : e->model_.max_pos;
  opt.max_seq_len = e->max_seq_len_;
  opt.max_sequences = int(c.max_batch);

  if (c.calibrate) {  // no weights, no compute
    e->start_scheduler();
    return e;
  }

  // The CUDA backend checks GPU memory itself and keeps no host copy.
  const bool cuda = is_cuda_device(opt.device);
  const uint64_t need = host_weight_bytes(e->model_, opt.weights, opt.quantize_lm_head);
  const int64_t avail = mem_available_bytes();
  if (!cuda && avail >= 0 && need > uint64_t(avail))
    fail(LMD_ERR_NOMEM, c.model + " needs " + format_gb(need) + " of host memory for " +
                            (opt.weights == WeightFormat::Int8 ? "int8" : "fp32") + " weights, " +
                            format_gb(uint64_t(avail)) +
                            " available; use --device cuda or a smaller " +
                            (c.random ? "preset" : "model"));

  std::unique_ptr<WeightSource> src =
      c.random ? make_random_source(e->model_, c.seed) : open_checkpoint(c.model);
  check_weight_source(e->model_, *src, c.model);
  if (cuda)
    e->backend_ = make_cuda_backend(e->model_, *src, opt, CudaWeightOrigin{c.random, c.seed});
  else
    e->backend_ = make_backend(e->model_, *src, opt);
  e->start_scheduler();
  return e;
}

void Engine::start_scheduler() {
  SchedulerOptions o;
  // As many as both the config and the backend hold (a backend that does
  // not batch holds one).
  o.max_sequences = int(cfg_.max_batch);
  if (backend_) o.max_sequences = std::min(o.max_sequences, backend_->max_sequences());
  o.step_tokens = int(cfg_.step_tokens);
  // Prompts packed into one step while nothing decodes: a GPU takes more.
  const bool gpu = backend_ && std::strcmp(backend_->name(), "ref-cuda") == 0;
  o.prefill_tokens = std::max(o.step_tokens, gpu ? 32768 : 8192);
  scheduler_ = std::make_unique<Scheduler>(backend_.get(), model_, eos_, o);
}

Engine::~Engine() {
  if (scheduler_) scheduler_->stop();
}

int Engine::max_sequences() const { return scheduler_->options().max_sequences; }

EngineLimits Engine::limits() const {
  EngineLimits l;
  l.vocab = model_.vocab;
  l.max_seq_len = max_seq_len_;
  l.max_seq_len_from_config = cfg_.max_seq_len != 0;
  return l;
}

void Engine::info(lmd_info* out) const {
  std::memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  out->vocab_size = model_.vocab;
  copy_cstr(out->backend, sizeof out->backend, backend_ ? backend_->name() : "ref-cpu");
  copy_cstr(out->version, sizeof out->version, "lmdrive-ref " LMDRIVE_REF_VERSION);
  copy_tail(out->model, sizeof out->model, description_);
  copy_cstr(out->dtype, sizeof out->dtype, backend_ ? backend_->dtype() : "fp32");
  out->tp_size = cfg_.devices.empty() ? 1 : cfg_.tp;
  lmdrive::shim::set_info_ids(*out, cfg_.devices, eos_);
  out->n_devices = backend_ ? backend_->n_devices() : 0;  // 0 on the CPU
  out->max_seq_len = max_seq_len_;
  out->max_input_len = max_seq_len_ ? max_seq_len_ - 1 : 0;
  // Calibration emits fixed ids: no logprobs, no sampling.
  out->caps = cfg_.calibrate ? 0u : (LMD_CAP_LOGPROBS | LMD_CAP_WATCH | LMD_CAP_SAMPLING);
  if (backend_ && std::strcmp(backend_->name(), "ref-cuda") == 0) out->caps |= LMD_CAP_DEVICE_TIMING;
  const SchedulerOptions& so = scheduler_->options();
  out->max_sequences = static_cast<uint32_t>(so.max_sequences);
  out->batch_flags = LMD_BATCH_JOIN | LMD_BATCH_CHUNKED_PREFILL;
  out->max_step_tokens = static_cast<uint32_t>(so.step_tokens);
}

std::vector<std::unique_ptr<Stream>> Engine::start(const std::vector<RequestSpec>& reqs) {
  std::vector<Clamp> clamps;
  clamps.reserve(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    try {
      clamps.push_back(fit_request(reqs[i], limits()));
    } catch (const Error& e) {
      if (reqs.size() == 1) throw;
      throw Error(e.code(), "request " + std::to_string(i) + ": " + e.what());
    }
  }
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::shared_ptr<SequenceLink>> links;
  try {
    for (size_t i = 0; i < reqs.size(); ++i) {
      streams.push_back(std::make_unique<Stream>(shared_from_this(), reqs[i], clamps[i]));
      links.push_back(streams.back()->link());
    }
  } catch (...) {
    // Streams already made wait for the scheduler when they go: hand it
    // their links, cancelled, so that it lets go of them at once.
    for (auto& l : links) l->cancel.store(true);
    scheduler_->submit(links);
    throw;
  }
  scheduler_->submit(links);
  return streams;
}

}  // namespace lmdref
