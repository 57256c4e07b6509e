// The CUDA backend's switches (native/ref/cuda/options.cpp), parsed on the
// CPU: defaults, each switch's kept alternative, and a clear error for a
// mistyped name or value instead of a silent default.
#include <string>
#include <vector>

#include "check.h"
#include "cuda/options.h"
#include "lmdrive_boundary.hpp"

using lmdcu::Options;

namespace {

Options parse(std::vector<const char*> env) {
  env.push_back(nullptr);
  return lmdcu::read_options(env.data());
}

std::string error_of(std::vector<const char*> env) {
  try {
    parse(env);
  } catch (const lmdrive::AbiError& e) {
    CHECK_EQ(e.code(), int32_t(LMD_ERR_INVALID));
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE(options) {
  {
    const Options o = parse({"PATH=/bin", "HOME=/root", "LMDREF_CHECK_STEPS=parity"});
    const Options d;
    CHECK(o.graph == d.graph && o.gemv_decode == d.gemv_decode &&
          o.peer_allreduce == d.peer_allreduce && o.early_start == d.early_start &&
          o.device_choice == d.device_choice && o.warp_gemv == d.warp_gemv &&
          o.separate_combine == d.separate_combine && o.launch_ahead == d.launch_ahead &&
          o.wgmma_prefill == d.wgmma_prefill);
    CHECK(o.graph && o.gemv_decode && o.peer_allreduce && o.early_start && o.device_choice &&
          o.warp_gemv && o.separate_combine && o.launch_ahead && o.wgmma_prefill);
    CHECK_EQ(lmdcu::changed_switches(o), std::string());
  }
  {
    const Options o = parse({"LMDREF_CUDA_GRAPH=0", "LMDREF_CUDA_DECODE=cublas", "LMDREF_CUDA_AR=nccl",
                             "LMDREF_CUDA_PDL=0", "LMDREF_CUDA_CHOICE=host", "LMDREF_CUDA_GEMV=stream",
                             "LMDREF_CUDA_COMBINE=merged", "LMDREF_CUDA_AHEAD=0",
                             "LMDREF_CUDA_PREFILL_ATTN=mma"});
    CHECK(!o.graph && !o.gemv_decode && !o.peer_allreduce && !o.early_start && !o.device_choice &&
          !o.warp_gemv && !o.separate_combine && !o.launch_ahead && !o.wgmma_prefill);
    CHECK_EQ(lmdcu::changed_switches(o),
             std::string("LMDREF_CUDA_GRAPH=0 LMDREF_CUDA_DECODE=cublas LMDREF_CUDA_AR=nccl "
                         "LMDREF_CUDA_PDL=0 LMDREF_CUDA_CHOICE=host LMDREF_CUDA_GEMV=stream "
                         "LMDREF_CUDA_COMBINE=merged LMDREF_CUDA_AHEAD=0 "
                         "LMDREF_CUDA_PREFILL_ATTN=mma"));
  }
  {
    // The default value named explicitly is the default.
    const Options o = parse({"LMDREF_CUDA_PDL=1", "LMDREF_CUDA_CHOICE=device"});
    CHECK(o.early_start && o.device_choice);
    CHECK_EQ(lmdcu::changed_switches(o), std::string());
  }
  {
    // A removed or mistyped switch fails and lists the real ones.
    const std::string e = error_of({"LMDREF_CUDA_ATTN=warp"});
    CHECK_HAS(e, "LMDREF_CUDA_ATTN is not a switch");
    CHECK_HAS(e, "LMDREF_CUDA_GRAPH=1|0");
    CHECK_HAS(e, "LMDREF_CUDA_CHOICE=device|host");
    const std::string v = error_of({"LMDREF_CUDA_PDL=off"});
    CHECK_HAS(v, "LMDREF_CUDA_PDL=off");
    CHECK_HAS(v, "1 (default) and 0");
    CHECK_HAS(error_of({"LMDREF_CUDA_GRAPH"}), "LMDREF_CUDA_GRAPH=");
  }
}

TEST_MAIN("test_cuda_options")
