// The plugin's error paths for failed CUDA and cuBLAS calls (common.h).
#include <cstdio>

#include "common.h"

namespace lmdcu {

void cuda_fail(cudaError_t e, const char* what, const char* file, int line) {
  const int32_t code = (e == cudaErrorMemoryAllocation) ? LMD_ERR_NOMEM : LMD_ERR_ENGINE;
  char buf[512];
  std::snprintf(buf, sizeof buf, "CUDA error %s (%s) in %s at %s:%d", cudaGetErrorName(e),
                cudaGetErrorString(e), what, file, line);
  throw Error(code, buf);
}

void cublas_fail(cublasStatus_t s, const char* what, const char* file, int line) {
  const int32_t code = (s == CUBLAS_STATUS_ALLOC_FAILED) ? LMD_ERR_NOMEM : LMD_ERR_ENGINE;
  char buf[512];
  std::snprintf(buf, sizeof buf, "cuBLAS error %d (%s) in %s at %s:%d", int(s),
                cublasGetStatusString(s), what, file, line);
  throw Error(code, buf);
}

}  // namespace lmdcu
