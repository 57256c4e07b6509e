/*
 * Debug entry point of liblmdrive_ref.so, outside the lmd_api table: golden-
 * logit tests call it to compare the reference engine with Hugging Face.
 */
#ifndef LMDRIVE_REF_DEBUG_H
#define LMDRIVE_REF_DEBUG_H

#include <stdint.h>

#include "lmdrive.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates an engine from config_json, runs one prefill over tokens[0..n) and
 * writes the logits of the last last_k positions to out (last_k × vocab
 * floats, row-major, in position order), then destroys the engine.
 * Returns an LMD_* code; err receives the message on failure. */
int32_t lmdrive_ref_logits(const char* config_json, const int32_t* tokens, uint32_t n,
                           uint32_t last_k, float* out, lmd_error* err);

/* Quantizes a rows × cols fp32 matrix (row-major) as the engine does at load
 * (quantize.h): format "int8" (q: int8 bytes) or "fp8" (E4M3 bytes), one scale
 * per row into scales. For checking other implementations bit for bit. */
int32_t lmdrive_ref_quantize(const char* format, const float* w, uint64_t rows, uint64_t cols,
                             uint8_t* q, float* scales, lmd_error* err);

#ifdef __cplusplus
}
#endif

#endif /* LMDRIVE_REF_DEBUG_H */
