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
    hh->model = make_model(s, w, devices, o->dtype ? o->dtype : "fp16", opt,
                           int(o->max_sequences > 0 ? o->max_sequences : 1));
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

// The greedy choice of one position from each rank's pick. Ranks hold
// consecutive vocabulary slices: on equal maxima the lower rank has the
// lower id, so "strictly greater" keeps the first index.
void combine_picks(const Pick* picks, int tp, lmdref_cuda_choice* choice) {
  const Pick* best = nullptr;
  for (int r = 0; r < tp; ++r)
    if (picks[r].index >= 0 && (!best || picks[r].max > best->max)) best = &picks[r];
  if (!best) throw Error(LMD_ERR_ENGINE, "every logit of this step is -inf or NaN");
  double sum = 0;
  for (int r = 0; r < tp; ++r)
    if (picks[r].index >= 0) sum += double(picks[r].sum) * std::exp(double(picks[r].max) - double(best->max));
  choice->id = best->index;
  choice->logit = best->max;
  choice->log_sum_exp = double(best->max) + std::log(sum);
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
    combine_picks(picks.data(), m.tp(), choice);
  });
}

int32_t plugin_max_sequences(void* h) { return static_cast<Handle*>(h)->model->max_sequences(); }

int32_t plugin_open_sequence(void* h, int32_t positions, int32_t* slot, char* err, size_t cap) {
  return lmdrive::guarded(err, cap, [&] {
    if (!slot) throw Error(LMD_ERR_INVALID, "CUDA plugin: open_sequence without a slot");
    *slot = static_cast<Handle*>(h)->model->open_sequence(positions);
  });
}

void plugin_close_sequence(void* h, int32_t slot) {
  static_cast<Handle*>(h)->model->close_sequence(slot);
}

int32_t plugin_step(void* h, const int32_t* tokens, const lmdref_cuda_seq* seqs, int32_t n_seqs,
                    int32_t* failed_slot, char* err, size_t cap) {
  if (failed_slot) *failed_slot = -1;
  return lmdrive::guarded(err, cap, [&] {
    if (!tokens || !seqs || n_seqs < 1) throw Error(LMD_ERR_INVALID, "CUDA plugin: bad step arguments");
    Model& m = *static_cast<Handle*>(h)->model;
    int k = 0;
    for (int i = 0; i < n_seqs; ++i) k += seqs[i].emit != LMDREF_EMIT_NONE ? 1 : 0;
    std::vector<Pick> picks(size_t(std::max(k, 1)) * m.tp());
    try {
      m.step(tokens, seqs, n_seqs, picks.data());
    } catch (const SequenceFull& e) {
      if (failed_slot) *failed_slot = e.slot();
      throw;
    }
    int e = 0;
    for (int i = 0; i < n_seqs; ++i) {
      if (seqs[i].emit == LMDREF_EMIT_NONE) continue;
      if (seqs[i].emit == LMDREF_EMIT_CHOICE) combine_picks(&picks[size_t(e) * m.tp()], m.tp(), seqs[i].choice);
      ++e;
    }
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
    plugin_max_sequences,    plugin_open_sequence,       plugin_close_sequence,
    plugin_step,
};

}  // namespace
}  // namespace lmdcu

extern "C" __attribute__((visibility("default"))) const lmdref_cuda_api* lmdref_cuda_get_api(void) {
  return &lmdcu::kApi;
}
