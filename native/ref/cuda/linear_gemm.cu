// Projections of n tokens through cuBLAS (the prefill's GEMMs).
#include "linear.h"

namespace lmdcu {

template <typename T>
void linear_gemm(cublasHandle_t blas, const Linear<T>& W, const T* x, int n, void* y,
                 cudaDataType_t y_type) {
  const float one = 1.f, zero = 0.f;
  BLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, n, W.cols, &one, W.w,
                          Types<T>::cuda, W.cols, x, Types<T>::cuda, W.cols, &zero, y, y_type,
                          W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template void linear_gemm<__half>(cublasHandle_t, const Linear<__half>&, const __half*, int, void*,
                                  cudaDataType_t);
template void linear_gemm<__nv_bfloat16>(cublasHandle_t, const Linear<__nv_bfloat16>&,
                                         const __nv_bfloat16*, int, void*, cudaDataType_t);

}  // namespace lmdcu
