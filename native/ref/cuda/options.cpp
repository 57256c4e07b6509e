#include "options.h"

#include <cstring>

#include "lmdrive.h"
#include "lmdrive_boundary.hpp"

namespace lmdcu {

namespace {

// One two-valued switch: the default value sets the field, the other clears it.
struct Switch {
  const char* name;
  const char* on;   // the default
  const char* off;  // the kept alternative
  bool Options::*field;
};

const Switch kSwitches[] = {
    {"LMDREF_CUDA_GRAPH", "1", "0", &Options::graph},
    {"LMDREF_CUDA_DECODE", "gemv", "cublas", &Options::gemv_decode},
    {"LMDREF_CUDA_AR", "peer", "nccl", &Options::peer_allreduce},
    {"LMDREF_CUDA_PDL", "1", "0", &Options::early_start},
    {"LMDREF_CUDA_CHOICE", "device", "host", &Options::device_choice},
    {"LMDREF_CUDA_GEMV", "warp", "stream", &Options::warp_gemv},
    {"LMDREF_CUDA_COMBINE", "separate", "merged", &Options::separate_combine},
    {"LMDREF_CUDA_AHEAD", "1", "0", &Options::launch_ahead},
    {"LMDREF_CUDA_PREFILL_ATTN", "wgmma", "mma", &Options::wgmma_prefill},
};

constexpr const char kPrefix[] = "LMDREF_CUDA_";

}  // namespace

std::string switch_list() {
  std::string s;
  for (const Switch& w : kSwitches) {
    if (!s.empty()) s += ", ";
    s += std::string(w.name) + "=" + w.on + "|" + w.off;
  }
  return s;
}

Options read_options(const char* const* env) {
  Options o;
  for (const char* const* e = env; e && *e; ++e) {
    const char* kv = *e;
    if (std::strncmp(kv, kPrefix, sizeof kPrefix - 1) != 0) continue;
    const char* eq = std::strchr(kv, '=');
    const std::string name(kv, eq ? size_t(eq - kv) : std::strlen(kv));
    const std::string value = eq ? eq + 1 : "";
    const Switch* sw = nullptr;
    for (const Switch& w : kSwitches)
      if (name == w.name) sw = &w;
    if (!sw)
      throw lmdrive::AbiError(LMD_ERR_INVALID, "environment variable " + name +
                                                   " is not a switch of the CUDA backend; its "
                                                   "switches are " + switch_list());
    if (value == sw->on)
      o.*(sw->field) = true;
    else if (value == sw->off)
      o.*(sw->field) = false;
    else
      throw lmdrive::AbiError(LMD_ERR_INVALID, "environment variable " + name + "=" + value +
                                                   ": the values are " + sw->on + " (default) and " +
                                                   sw->off);
  }
  return o;
}

std::string changed_switches(const Options& o) {
  const Options defaults;
  std::string s;
  for (const Switch& w : kSwitches) {
    if (o.*(w.field) == defaults.*(w.field)) continue;
    if (!s.empty()) s += " ";
    s += std::string(w.name) + "=" + (o.*(w.field) ? w.on : w.off);
  }
  return s;
}

}  // namespace lmdcu
