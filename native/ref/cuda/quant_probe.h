/*
 * Debug entry points of liblmdrive_ref_cuda.so for the quantized weights
 * (outside the plugin table, like lmdrive_ref_logits of the core library):
 * the GPU check (parity.py through quant_check.py) loads one rank's weights
 * exactly as the engine does and reads back what the kernels see, to compare
 * with the numpy quantizer (native/ref/quant_ref.py) matrix by matrix:
 * bytes and scales bit for bit, the prefill's dequantized scratch bit for
 * bit, and each decode kernel form against a float64 product.
 * Every call returns 0 or an LMD_ERR_* code with a message in err[cap].
 */
#ifndef LMDREF_CUDA_QUANT_PROBE_H
#define LMDREF_CUDA_QUANT_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "plugin_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The matrices of a probe: one layer's q|k|v, o, gate|up, down, and the
 * lm_head (quantized only with quantize_lm_head). */
enum { LMDREF_PROBE_QKV = 0, LMDREF_PROBE_O = 1, LMDREF_PROBE_GATE_UP = 2,
       LMDREF_PROBE_DOWN = 3, LMDREF_PROBE_LM_HEAD = 4 };

/* Loads rank `rank` of a tp-way split of the model onto CUDA device `device`
 * (only that rank: tp > 1 needs one GPU), weights from w, quantized to format
 * ("int8" or "fp8"), activations in dtype ("fp16" or "bf16"). *out receives
 * the probe. */
int32_t lmdref_cuda_probe_open(const lmdref_cuda_model* m, const lmdref_cuda_weights* w,
                               const char* dtype, const char* format, int32_t quantize_lm_head,
                               int32_t tp, int32_t rank, int32_t device, void** out, char* err,
                               size_t cap);

/* The rank's rows and columns of a matrix. */
int32_t lmdref_cuda_probe_shape(void* probe, int32_t which, int32_t* rows, int32_t* cols,
                                char* err, size_t cap);

/* A matrix of layer `layer` (ignored for the lm_head): its bytes (rows ×
 * cols) and scales (rows); and, when deq is not NULL, the dequantized matrix
 * as the prefill's GEMMs read it after the prefill dequantized the whole
 * layer ahead into scratch half `half` (0 or 1), as floats (rows × cols). */
int32_t lmdref_cuda_probe_matrix(void* probe, int32_t layer, int32_t which, int32_t half,
                                 uint8_t* q, float* scale, float* deq, char* err, size_t cap);

/* The decode kernel forms. */
enum { LMDREF_PROBE_Y = 0,        /* out[rows] = W x, fp32 */
       LMDREF_PROBE_RESIDUAL = 1, /* out[rows] = T(residual + T(W x)) */
       LMDREF_PROBE_GATE_UP_ACT = 2, /* gate|up: out[rows / 2] = SwiGLU */
       LMDREF_PROBE_QKV_ROPE = 3  /* q|k|v: out = q | k | v of the token at position pos
                                     after bias and RoPE (rows floats) */ };

typedef struct lmdref_cuda_probe_gemv {
  int32_t layer, which, form, pos;
  const float* x;        /* cols values, rounded to the dtype first */
  const float* norm;     /* NULL, or cols RMSNorm weights: the kernel normalises x */
  float eps;
  uint32_t reserved;
  const float* residual; /* LMDREF_PROBE_RESIDUAL: rows values */
  float* out;
} lmdref_cuda_probe_gemv;

int32_t lmdref_cuda_probe_run(void* probe, const lmdref_cuda_probe_gemv* g, char* err, size_t cap);

void lmdref_cuda_probe_close(void* probe);

/* The time of one decode kernel call (form as above; norm: the RMSNorm
 * fused in) on a rows × cols matrix of random bytes on the current CUDA
 * device, launched back to back `iters` times as a decode step launches them
 * (early start on sm_90), cycling through enough copies of the matrix that
 * none is read from L2: *seconds is the mean time of a call. q|k|v takes
 * rows = (q_heads + 2 kv_heads) × head_dim. */
int32_t lmdref_cuda_probe_speed(const char* dtype, const char* format, int32_t form, int32_t rows,
                                int32_t cols, int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                                int32_t norm, int32_t iters, double* seconds, char* err,
                                size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* LMDREF_CUDA_QUANT_PROBE_H */
