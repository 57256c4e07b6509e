// Projections of n tokens through cuBLAS (the prefill's GEMMs).
#include "linear.h"

namespace lmdcu {

template <typename T>
void linear_gemm(cublasHandle_t blas, const Linear<T>& W, const T* x, int n, void* y,
                 cudaDataType_t y_type) {
  const float one = 1.f, zero = 0.f;
  if (W.quantized() && !W.deq)
    throw Error(LMD_ERR_ENGINE, "linear_gemm: a quantized matrix without a dequantization scratch");
  const T* w = W.quantized() ? W.deq : W.w;
  BLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, n, W.cols, &one, w,
                          Types<T>::cuda, W.cols, x, Types<T>::cuda, W.cols, &zero, y, y_type,
                          W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void linear_prepare(const Linear<T>& W, const Launch& l) {
  if (W.quantized()) launch_dequantize<T>(W.format, W.q, W.scale, W.rows, W.cols, W.deq, l);
}

template void linear_prepare<__half>(const Linear<__half>&, const Launch&);
template void linear_prepare<__nv_bfloat16>(const Linear<__nv_bfloat16>&, const Launch&);
template void linear_gemm<__half>(cublasHandle_t, const Linear<__half>&, const __half*, int, void*,
                                  cudaDataType_t);
template void linear_gemm<__nv_bfloat16>(cublasHandle_t, const Linear<__nv_bfloat16>&,
                                         const __nv_bfloat16*, int, void*, cudaDataType_t);

}  // namespace lmdcu
