// The plugin's C entry points (plugin_abi.h): argument checks, the switches
// read once per engine, and no exception across the boundary.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "model.h"

extern char** environ;

namespace lmdcu {
namespace {

struct Handle {
  std::unique_ptr<Model> model;
};

void* plugin_create(const lmdref_cuda_model* m, const lmdref_cuda_weights* w,
                    const lmdref_cuda_options* o, int32_t* code, char* err, size_t cap) {
  Handle* h = nullptr;
  const int32_t rc = lmdrive::guarded(err, cap, [&] {
    if (!m || !w || !o || !o->devices || o->n_devices < 1)
      throw Error(LMD_ERR_INVALID, "CUDA plugin: bad create arguments");
    const Options opt = read_options(environ);
    const std::string changed = changed_switches(opt);
    if (!changed.empty()) std::fprintf(stderr, "lmdrive-ref-cuda: switches %s\n", changed.c_str());
    std::vector<int> devices(o->devices, o->devices + o->n_devices);
    const Shape s = make_shape(*m, int(devices.size()), o->weights ? o->weights : "",
                               o->quantize_lm_head != 0);
    std::unique_ptr<Handle> hh(new Handle);
    hh->model = make_model(s, w, devices, o->dtype ? o->dtype : "fp16", opt);
    h = hh.release();
  });
  if (code) *code = rc;
  return h;
}

// True (and *cancelled set) when the caller's cancel flag is already up.
bool cancelled_before(const void* cancel, int32_t* cancelled) {
  const auto* flag = static_cast<const std::atomic<bool>*>(cancel);
  const bool up = flag && flag->load(std::memory_order_relaxed);
  if (cancelled) *cancelled = up ? 1 : 0;
  return up;
}

int32_t plugin_forward(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                       int32_t n_logits, float* logits, const void* cancel, int32_t* cancelled,
                       char* err, size_t cap) {
  if (cancelled_before(cancel, cancelled)) return 0;
  return lmdrive::guarded(err, cap, [&] {
    Output out;
    out.logits = logits;
    static_cast<Handle*>(h)->model->forward(tokens, n, start_pos, n_logits, out);
  });
}

int32_t plugin_forward_greedy(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                              const int32_t* watch, int32_t n_watch, float* watch_logits,
                              lmdref_cuda_choice* choice, const void* cancel, int32_t* cancelled,
                              char* err, size_t cap) {
  if (cancelled_before(cancel, cancelled)) return 0;
  return lmdrive::guarded(err, cap, [&] {
    if (!choice || n_watch < 0 || (n_watch > 0 && (!watch || !watch_logits)))
      throw Error(LMD_ERR_INVALID, "CUDA plugin: bad forward_greedy arguments");
    Model& m = *static_cast<Handle*>(h)->model;
    std::vector<Pick> picks(m.tp());
    Output out;
    out.picks = picks.data();
    out.watch = watch;
    out.n_watch = n_watch;
    out.watch_logits = watch_logits;
    m.forward(tokens, n, start_pos, 1, out);
    // Ranks hold consecutive vocabulary slices: on equal maxima the lower
    // rank has the lower id, so "strictly greater" keeps the first index.
    const Pick* best = nullptr;
    for (const Pick& p : picks)
      if (p.index >= 0 && (!best || p.max > best->max)) best = &p;
    if (!best) throw Error(LMD_ERR_ENGINE, "every logit of this step is -inf or NaN");
    double sum = 0;
    for (const Pick& p : picks)
      if (p.index >= 0) sum += double(p.sum) * std::exp(double(p.max) - double(best->max));
    choice->id = best->index;
    choice->logit = best->max;
    choice->log_sum_exp = double(best->max) + std::log(sum);
  });
}

int64_t plugin_last_device_ns(void* h) { return static_cast<Handle*>(h)->model->last_device_ns(); }
const char* plugin_dtype(void* h) { return static_cast<Handle*>(h)->model->dtype(); }
void plugin_destroy(void* h) { delete static_cast<Handle*>(h); }
int32_t plugin_chooses_greedy(void* h) {
  return static_cast<Handle*>(h)->model->options().device_choice ? 1 : 0;
}

const lmdref_cuda_api kApi = {
    sizeof(lmdref_cuda_api), LMDREF_CUDA_PLUGIN_VERSION, plugin_create,
    plugin_forward,          plugin_last_device_ns,      plugin_dtype,
    plugin_destroy,          plugin_forward_greedy,      plugin_chooses_greedy,
};

}  // namespace
}  // namespace lmdcu

extern "C" __attribute__((visibility("default"))) const lmdref_cuda_api* lmdref_cuda_get_api(void) {
  return &lmdcu::kApi;
}
