/*
 * The C boundary between liblmdrive_ref.so and its CUDA plugin,
 * liblmdrive_ref_cuda.so. The core library dlopen()s the plugin only when a
 * config asks for device "cuda", so the core stays loadable on hosts without
 * CUDA. Only plain structs and function pointers cross this boundary: the two
 * libraries may carry different C++ runtimes (the core links libstdc++
 * statically), so no exception and no C++ type passes from one to the other.
 */
#ifndef LMDREF_CUDA_PLUGIN_ABI_H
#define LMDREF_CUDA_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LMDREF_CUDA_PLUGIN_VERSION 4
#define LMDREF_CUDA_PLUGIN_FILE "liblmdrive_ref_cuda.so"
#define LMDREF_CUDA_PLUGIN_ENTRY "lmdref_cuda_get_api"

/* The model's shape (a copy of lmdref::ModelConfig's fields). */
typedef struct lmdref_cuda_model {
  uint32_t vocab, hidden, intermediate, layers;
  uint32_t heads, kv_heads, head_dim, tied;
  uint32_t max_seq_len; /* the engine's limit: the KV cache is sized for it when it fits */
  uint32_t reserved;
  double rope_theta;
  float rms_eps;
  float reserved2;
} lmdref_cuda_model;

/* Where weights come from. Callbacks return 0 on success; on failure they
 * write a message into err (cap bytes) and return an LMD_ERR_* code. */
typedef struct lmdref_cuda_weights {
  void* ctx;
  /* 1: random:<preset> weights, generated on the device from rule(). */
  int32_t random;
  uint32_t reserved;
  /* Elements [first, first + count) of a tensor, row-major, as fp32. */
  int32_t (*read)(void* ctx, const char* name, uint64_t first, uint64_t count, float* out,
                  char* err, size_t cap);
  /* The random-weight rule of a tensor (random_weights.h): key, scale, plus_one. */
  int32_t (*rule)(void* ctx, const char* name, uint64_t in_features, uint64_t* key, float* scale,
                  int32_t* plus_one, char* err, size_t cap);
} lmdref_cuda_weights;

typedef struct lmdref_cuda_options {
  const char* dtype;     /* "fp16" or "bf16" */
  uint32_t n_devices;    /* the tensor-parallel size */
  uint32_t max_sequences; /* sequences held at once (step); the KV cache is shared by them */
  const int32_t* devices; /* CUDA device ordinals, one per rank */
  /* Linear weights: NULL or "" (in dtype), "int8" (per-channel, any GPU) or
   * "fp8" (E4M3, per-channel, sm_90); quantize.h's rules. */
  const char* weights;
  int32_t quantize_lm_head; /* 1: lm_head in the weights' format too */
  uint32_t reserved2;
} lmdref_cuda_options;

/* The greedy choice of one position, made on the GPUs. */
typedef struct lmdref_cuda_choice {
  int32_t id;         /* the first index of the largest logit */
  float logit;        /* logits[id] */
  double log_sum_exp; /* log(sum(exp(logits))) over the vocabulary (fp32 partial sums) */
} lmdref_cuda_choice;

/* What a sequence's last position of a step hands back. */
enum { LMDREF_EMIT_NONE = 0, LMDREF_EMIT_LOGITS = 1, LMDREF_EMIT_CHOICE = 2 };

/* One sequence's share of a batched step: n tokens at positions
 * [pos, pos + n) of the sequence in slot, and what its last position hands
 * back: its logits row (vocab floats), or the greedy choice and the logits of
 * n_watch watched ids. */
typedef struct lmdref_cuda_seq {
  int32_t slot, pos, n, emit;
  float* logits;
  lmdref_cuda_choice* choice;
  const int32_t* watch;
  float* watch_logits;
  int32_t n_watch;
  int32_t reserved;
} lmdref_cuda_seq;

typedef struct lmdref_cuda_api {
  uint32_t struct_size;
  uint32_t version; /* LMDREF_CUDA_PLUGIN_VERSION */
  /* NULL on failure, with *code and err set. */
  void* (*create)(const lmdref_cuda_model* m, const lmdref_cuda_weights* w,
                  const lmdref_cuda_options* o, int32_t* code, char* err, size_t cap);
  /* Backend::forward. *cancelled is set to 1 when cancel (a const
   * std::atomic<bool>*, may be NULL) was seen set. Returns an LMD_ERR_* code. */
  int32_t (*forward)(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                     int32_t n_logits, float* logits, const void* cancel, int32_t* cancelled,
                     char* err, size_t cap);
  /* Device time of the last forward in ns (CUDA events on rank 0), -1 unknown. */
  int64_t (*last_device_ns)(void* h);
  const char* (*dtype)(void* h);
  void (*destroy)(void* h);
  /* Backend::forward for the last of n positions, handing back the greedy
   * choice and the logits of n_watch watched ids (written to watch_logits)
   * instead of the logits row: the row stays on the GPUs. */
  int32_t (*forward_greedy)(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                            const int32_t* watch, int32_t n_watch, float* watch_logits,
                            lmdref_cuda_choice* choice, const void* cancel, int32_t* cancelled,
                            char* err, size_t cap);
  /* 1 when greedy decoding should use forward_greedy (the choice made on the
   * GPUs), 0 when the plugin's switches ask for the logits row instead. */
  int32_t (*chooses_greedy)(void* h);
  /* Sequences (version 4). Each holds a contiguous range of the KV cache,
   * reserved when it opens; forward() and forward_greedy() use positions
   * from 0 and refuse to run while a sequence is open. */
  int32_t (*max_sequences)(void* h);
  /* *slot = the new sequence's slot, or -1 when its positions (at most the
   * cache's, prompt + new tokens) do not fit until another one closes. */
  int32_t (*open_sequence)(void* h, int32_t positions, int32_t* slot, char* err, size_t cap);
  void (*close_sequence)(void* h, int32_t slot);
  /* One step over n_seqs sequences; tokens holds theirs one after another.
   * A sequence that outgrows its range sets *failed_slot (else -1) and the
   * step returns LMD_ERR_NOMEM without running. */
  int32_t (*step)(void* h, const int32_t* tokens, const lmdref_cuda_seq* seqs, int32_t n_seqs,
                  int32_t* failed_slot, char* err, size_t cap);
} lmdref_cuda_api;

typedef const lmdref_cuda_api* (*lmdref_cuda_get_api_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* LMDREF_CUDA_PLUGIN_ABI_H */
