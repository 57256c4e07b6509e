#include "backend.h"

#include "cpu/cpu_backend.h"
#include "errors.h"

namespace lmdref {

void check_backend_options(const BackendOptions& opt) {
  // Hook: a CUDA backend (native/ref/cuda/, built where CMAKE_CUDA_COMPILER is
  // found) will accept device "cuda"/"cuda:N" and dtypes fp16/bf16 here.
  if (opt.device != "cpu")
    fail(LMD_ERR_UNSUPPORTED, "device \"" + opt.device +
                                  "\" is not available: this build has only the CPU backend "
                                  "(device \"cpu\")");
  if (opt.dtype != "fp32")
    fail(LMD_ERR_UNSUPPORTED,
         "dtype \"" + opt.dtype + "\" is not supported on the CPU backend; it computes in fp32");
}

std::unique_ptr<Backend> make_backend(const ModelConfig& m, const WeightSource& src,
                                      const BackendOptions& opt) {
  check_backend_options(opt);
  return make_cpu_backend(m, src, opt.threads, opt.max_seq_len);
}

}  // namespace lmdref
