#include "backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cuda/dispatch.h"
#include "cuda/plugin_abi.h"
#include "kit.h"
#include "random_weights.h"

namespace lmdref {

namespace {

// "cuda" → {0}; "cuda:1" → {1}; "cuda:0,1" → {0, 1}.
std::vector<int32_t> cuda_devices(const std::string& device) {
  std::vector<int32_t> ids;
  if (device == "cuda") return {0};
  std::string rest = device.substr(5);
  size_t at = 0;
  while (at <= rest.size()) {
    const size_t comma = rest.find(',', at);
    const std::string part = rest.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (part.empty() || part.size() > 4 || part.find_first_not_of("0123456789") != std::string::npos)
      invalid("device \"" + device + "\" is not cuda, cuda:<ordinal> or cuda:<ordinal>,<ordinal>,…");
    ids.push_back(std::stoi(part));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return ids;
}

// The directory of the library (or executable) this code was linked into.
std::string own_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) && info.dli_fname) {
    std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos) return path.substr(0, slash);
  }
  return ".";
}

// What loading the CUDA plugin gave: its table, or why there is none.
struct PluginLoad {
  const lmdref_cuda_api* api = nullptr;
  std::string error;
};

PluginLoad load_cuda_plugin() {
  PluginLoad load;
  const std::string path = own_directory() + "/" LMDREF_CUDA_PLUGIN_FILE;
  if (access(path.c_str(), F_OK) != 0) {
    load.error = "device \"cuda\" is not available: this build has no CUDA backend (" + path +
                 " does not exist), only the CPU backend (device \"cpu\"); build on a machine with "
                 "nvcc (CUDA 12+) to get " LMDREF_CUDA_PLUGIN_FILE;
  } else if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    auto get = reinterpret_cast<lmdref_cuda_get_api_fn>(dlsym(h, LMDREF_CUDA_PLUGIN_ENTRY));
    const lmdref_cuda_api* a = get ? get() : nullptr;
    if (!a || a->version != LMDREF_CUDA_PLUGIN_VERSION || a->struct_size < sizeof(lmdref_cuda_api))
      load.error = path + " is not a CUDA plugin of this build of liblmdrive_ref.so (version mismatch)";
    else
      load.api = a;  // never unloaded: CUDA and NCCL keep threads of their own
  } else {
    const char* e = dlerror();
    load.error = "device \"cuda\" is not available: " + path + " could not be loaded (" +
                 std::string(e ? e : "unknown error") +
                 "); the CUDA driver, cuBLAS or NCCL library is missing on this host, which leaves "
                 "only the CPU backend (device \"cpu\")";
  }
  return load;
}

// The plugin, loaded on first use and never again (a constant from then on);
// on failure *why says what went wrong.
const lmdref_cuda_api* cuda_plugin(std::string* why) {
  static const PluginLoad load = load_cuda_plugin();
  if (!load.api && why) *why = load.error;
  return load.api;
}

struct FeedContext {
  const WeightSource* src;
  uint64_t seed;
};

int32_t read_weights(void* ctx, const char* name, uint64_t first, uint64_t count, float* out,
                     char* err, size_t cap) {
  return lmdrive::guarded(err, cap, [&] {
    static_cast<FeedContext*>(ctx)->src->read(name, first, count, out);
  });
}

int32_t random_weight_rule(void* ctx, const char* name, uint64_t in_features, uint64_t* key,
                           float* scale, int32_t* plus_one, char* err, size_t cap) {
  return lmdrive::guarded(err, cap, [&] {
    const RandomRule r = random_rule(name, static_cast<FeedContext*>(ctx)->seed, in_features);
    *key = r.key;
    *scale = r.scale;
    *plus_one = r.plus_one ? 1 : 0;
  });
}

class CudaPluginBackend : public Backend {
 public:
  CudaPluginBackend(const lmdref_cuda_api* api, void* h, uint32_t n)
      : api_(api), h_(h), n_(n), device_choice_(api->chooses_greedy(h) != 0) {}
  ~CudaPluginBackend() override { api_->destroy(h_); }

  const char* name() const override { return "ref-cuda"; }
  const char* dtype() const override { return api_->dtype(h_); }
  uint32_t n_devices() const override { return n_; }

  bool forward(const int32_t* tokens, int n, int start_pos, int n_logits, float* logits,
               const std::atomic<bool>* cancel) override {
    char err[1024] = {0};
    int32_t cancelled = 0;
    const int32_t rc = api_->forward(h_, tokens, n, start_pos, n_logits, logits, cancel,
                                     &cancelled, err, sizeof err);
    if (rc) fail(rc, err);
    return cancelled == 0;
  }

  // The plugin's switches decide (LMDREF_CUDA_CHOICE=host brings the logits
  // row to the host instead, for A/B runs).
  bool chooses_greedy() const override { return device_choice_; }

  bool forward_greedy(const int32_t* tokens, int n, int start_pos, const int32_t* watch,
                      int n_watch, float* watch_logits, GreedyChoice* choice,
                      const std::atomic<bool>* cancel) override {
    char err[1024] = {0};
    int32_t cancelled = 0;
    lmdref_cuda_choice c{};
    const int32_t rc = api_->forward_greedy(h_, tokens, n, start_pos, watch, n_watch, watch_logits,
                                            &c, cancel, &cancelled, err, sizeof err);
    if (rc) fail(rc, err);
    choice->id = c.id;
    choice->logit = c.logit;
    choice->log_sum_exp = c.log_sum_exp;
    return cancelled == 0;
  }

  void reset() override {}  // positions restart at 0 and overwrite the cache

  int64_t last_device_ns() const override { return api_->last_device_ns(h_); }

  // Sequences live in ranges of the plugin's KV cache.
  int max_sequences() const override { return api_->max_sequences(h_); }

  int open_sequence(int positions) override {
    char err[1024] = {0};
    int32_t slot = -1;
    const int32_t rc = api_->open_sequence(h_, positions, &slot, err, sizeof err);
    if (rc) fail(rc, err);
    return slot;
  }

  void close_sequence(int slot) override { api_->close_sequence(h_, slot); }

  bool step(const int32_t* tokens, const SeqStep* seqs, int n_seqs,
            const StepCancel& cancel) override {
    if (cancel.all_set()) return false;
    std::vector<lmdref_cuda_seq> cs(static_cast<size_t>(n_seqs));
    std::vector<lmdref_cuda_choice> choices(static_cast<size_t>(n_seqs));
    for (int i = 0; i < n_seqs; ++i) {
      const SeqStep& q = seqs[i];
      lmdref_cuda_seq& c = cs[i];
      c.slot = q.slot;
      c.pos = q.pos;
      c.n = q.n;
      c.emit = q.choice ? LMDREF_EMIT_CHOICE : q.logits ? LMDREF_EMIT_LOGITS : LMDREF_EMIT_NONE;
      c.logits = q.logits;
      c.choice = &choices[i];
      c.watch = q.watch;
      c.watch_logits = q.watch_logits;
      c.n_watch = q.n_watch;
    }
    char err[1024] = {0};
    int32_t failed = -1;
    const int32_t rc = api_->step(h_, tokens, cs.data(), n_seqs, &failed, err, sizeof err);
    if (rc && failed >= 0) throw SequenceError(failed, err);
    if (rc) fail(rc, err);
    for (int i = 0; i < n_seqs; ++i)
      if (seqs[i].choice) {
        seqs[i].choice->id = choices[i].id;
        seqs[i].choice->logit = choices[i].logit;
        seqs[i].choice->log_sum_exp = choices[i].log_sum_exp;
      }
    return true;
  }

 private:
  const lmdref_cuda_api* api_;
  void* h_;
  uint32_t n_;
  bool device_choice_;
};

}  // namespace

int Backend::open_sequence(int) {
  if (single_open_) return -1;
  single_open_ = true;
  return 0;
}

void Backend::close_sequence(int) { single_open_ = false; }

bool Backend::step(const int32_t* tokens, const SeqStep* seqs, int n_seqs, const StepCancel& cancel) {
  if (n_seqs != 1 || seqs[0].slot != 0 || !single_open_)
    invalid("step: this backend runs one sequence at a time");
  const SeqStep& q = seqs[0];
  std::atomic<bool> stop{cancel.all_set()};
  if (q.choice)
    return forward_greedy(tokens, q.n, q.pos, q.watch, q.n_watch, q.watch_logits, q.choice, &stop);
  if (!q.logits) invalid("step: a one-sequence backend needs somewhere to put the logits");
  return forward(tokens, q.n, q.pos, 1, q.logits, &stop);
}

bool is_cuda_device(const std::string& device) {
  return device == "cuda" || device.rfind("cuda:", 0) == 0;
}

void check_backend_options(const BackendOptions& opt) {
  if (is_cuda_device(opt.device)) {
    cuda_devices(opt.device);
    if (opt.dtype != "fp16" && opt.dtype != "bf16")
      fail(LMD_ERR_UNSUPPORTED, "dtype \"" + opt.dtype +
                                    "\" is not supported on the CUDA backend; it computes in fp16 "
                                    "or bf16 (fp32 accumulation)");
    std::string why;
    if (!cuda_plugin(&why)) fail(LMD_ERR_UNSUPPORTED, why);
    return;
  }
  if (opt.device != "cpu")
    fail(LMD_ERR_UNSUPPORTED, "device \"" + opt.device +
                                  "\" is not available: devices are \"cpu\" (only the CPU "
                                  "backend) and \"cuda\" (where the CUDA backend was built)");
  if (opt.dtype != "fp32")
    fail(LMD_ERR_UNSUPPORTED,
         "dtype \"" + opt.dtype + "\" is not supported on the CPU backend; it computes in fp32");
  if (opt.weights == WeightFormat::Fp8)
    fail(LMD_ERR_UNSUPPORTED,
         "fp8 weights need the CUDA backend on an sm_90 GPU (H100/H200); the CPU backend runs "
         "fp32 or int8 weights");
}

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& m, const WeightSource& src,
                                           const BackendOptions& opt,
                                           const CudaWeightOrigin& origin) {
  check_backend_options(opt);
  const lmdref_cuda_api* api = cuda_plugin(nullptr);
  const std::vector<int32_t> devices = cuda_devices(opt.device);

  lmdref_cuda_model cm{};
  cm.vocab = m.vocab;
  cm.hidden = m.hidden;
  cm.intermediate = m.intermediate;
  cm.layers = m.layers;
  cm.heads = m.heads;
  cm.kv_heads = m.kv_heads;
  cm.head_dim = m.head_dim;
  cm.tied = m.tied ? 1 : 0;
  cm.max_seq_len = opt.max_seq_len ? opt.max_seq_len : m.max_pos;
  cm.rope_theta = m.rope_theta;
  cm.rms_eps = m.rms_eps;

  FeedContext ctx{&src, origin.seed};
  lmdref_cuda_weights w{};
  w.ctx = &ctx;
  w.random = origin.random ? 1 : 0;
  w.read = read_weights;
  w.rule = random_weight_rule;

  lmdref_cuda_options o{};
  o.dtype = opt.dtype.c_str();
  o.n_devices = static_cast<uint32_t>(devices.size());
  o.max_sequences = static_cast<uint32_t>(std::max(1, opt.max_sequences));
  o.devices = devices.data();
  o.weights = weight_format_name(opt.weights);
  o.quantize_lm_head = opt.quantize_lm_head ? 1 : 0;

  char err[1024] = {0};
  int32_t code = 0;
  void* h = api->create(&cm, &w, &o, &code, err, sizeof err);
  if (!h) fail(code ? code : LMD_ERR_ENGINE, err);
  return std::make_unique<CudaPluginBackend>(api, h, o.n_devices);
}

std::unique_ptr<Backend> make_backend(const ModelConfig& m, const WeightSource& src,
                                      const BackendOptions& opt) {
  if (is_cuda_device(opt.device)) return make_cuda_backend(m, src, opt, CudaWeightOrigin{});
  check_backend_options(opt);
  CpuWeightOptions w;
  w.int8 = opt.weights == WeightFormat::Int8;
  w.int8_lm_head = w.int8 && opt.quantize_lm_head;
  return make_cpu_backend(m, src, opt.threads, opt.max_seq_len, Parallel::kMinWork, w,
                          opt.max_sequences);
}

}  // namespace lmdref
