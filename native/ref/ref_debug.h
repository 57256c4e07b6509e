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

#ifdef __cplusplus
}
#endif

#endif /* LMDRIVE_REF_DEBUG_H */
