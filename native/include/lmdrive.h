/*
 * lmdrive.h — the C ABI every lmdrive engine library implements (ABI 1.1).
 *
 * lmdrive looks up one symbol in a library, lmdrive_get_api(), which returns
 * a table of function pointers; every engine library exports it. lmdrive
 * reads the table's size and version before calling anything else and
 * refuses a different major version. A library may export symbols of its own
 * beside it (the reference engine exports lmdrive_ref_logits, a debug entry
 * point for golden-logit tests, declared in native/ref/ref_debug.h); they are
 * not part of this ABI and lmdrive never calls them.
 *
 * Rules that keep the ABI callable from Go through purego without cgo:
 *  - only scalars, opaque handles and pointers to plain structs cross the
 *    boundary; nothing is passed or returned by value except scalars;
 *  - every struct starts with uint32_t struct_size, set by whoever allocates
 *    it (the caller for in/out structs). A library must accept a smaller
 *    struct_size from an older caller and fill only the fields that fit;
 *  - fields are laid out so that no implicit padding exists (explicit
 *    reserved fields instead), so Go mirrors match byte for byte;
 *  - errors are return codes plus a message written into a caller-owned
 *    lmd_error; no function throws, aborts on bad input, or keeps a pointer
 *    to caller memory after it returns (except lmd_stream, see start()).
 *
 * Generation is pull-based: start() launches one generation on threads the
 * library owns and returns a stream; the caller polls tokens from the stream
 * (blocking with a timeout), may cancel it from any thread, reads the result
 * once the stream reports done, and closes it. No callbacks into the caller.
 *
 * Units: times are int64 nanoseconds of CLOCK_MONOTONIC (the table's now_ns()
 * reads the same clock); a time or count the engine cannot provide is -1, a
 * float it cannot provide is NaN.
 *
 * Many requests at once (ABI 1.1). An engine may run several generations at
 * once on one handle, each with its own stream, started and polled on its
 * own. lmd_info says how many (max_sequences) and how (batch_flags): whether
 * a request may join while others generate (LMD_BATCH_JOIN: continuous
 * batching) and whether joining prompts are prefilled in chunks between
 * decode steps (LMD_BATCH_CHUNKED_PREFILL, max_step_tokens per step).
 * start_batch() starts several requests in the same engine step. A stream
 * counts against max_sequences from its start() until it is closed: start()
 * or start_batch() beyond max_sequences open streams fails with
 * LMD_ERR_BUSY and starts nothing. A failure inside one generation ends that
 * stream only (LMD_FINISH_ERROR); the others go on. A library of ABI 1.0
 * leaves the 1.1 fields zero and has no start_batch: it has one open stream
 * at a time.
 *
 * Threading:
 *  - create and destroy: one thread, with no other call on that engine in
 *    progress (destroy cancels and ends every stream still running).
 *  - info, start, start_batch: one thread at a time per engine (the caller
 *    serialises them); they may overlap any stream's poll, cancel, result and
 *    close.
 *  - poll, result, close: one thread at a time per stream; different streams
 *    may be polled at the same time from different threads.
 *  - cancel: any thread, any time before close.
 */
#ifndef LMDRIVE_H
#define LMDRIVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LMDRIVE_ABI_MAJOR 1
#define LMDRIVE_ABI_MINOR 1

/* Return codes. */
enum {
  LMD_OK = 0,
  LMD_ERR_INVALID = 1,     /* bad argument, config or request: the caller's to fix */
  LMD_ERR_UNSUPPORTED = 2, /* valid, but this engine cannot do it */
  LMD_ERR_ENGINE = 3,      /* the engine failed */
  LMD_ERR_BUSY = 4,        /* max_sequences streams are open on this engine */
  LMD_ERR_NOMEM = 5,       /* host or device memory exhausted */
  LMD_ERR_STATE = 6        /* call out of order (e.g. result() before done) */
};

/* Why a generation ended. */
enum {
  LMD_FINISH_NONE = 0,      /* still running */
  LMD_FINISH_EOS = 1,       /* an EOS id was generated and ignore_eos was off */
  LMD_FINISH_STOP = 2,      /* a stop sequence (or single stop id) matched */
  LMD_FINISH_LENGTH = 3,    /* max_new_tokens reached */
  LMD_FINISH_LIMIT = 4,     /* an engine limit (max_seq_len, session_len…) ended it first */
  LMD_FINISH_CANCELLED = 5, /* cancel() was called */
  LMD_FINISH_TIMEOUT = 6,   /* the engine's own timeout fired */
  LMD_FINISH_ERROR = 7      /* the engine failed mid-generation; see result.detail */
};

/* Capability bits in lmd_info.caps. */
enum {
  LMD_CAP_LOGPROBS = 1u << 0,      /* chosen-token logprobs */
  LMD_CAP_WATCH = 1u << 1,         /* watched-id logprobs at every step */
  LMD_CAP_DEVICE_TIMING = 1u << 2, /* device-side prefill/decode times */
  LMD_CAP_ENGINE_TIMING = 1u << 3, /* engine-side (non-host) timing points */
  LMD_CAP_SAMPLING = 1u << 4       /* top-k / top-p / temperature honoured */
};

/* Batching bits in lmd_info.batch_flags (ABI 1.1). */
enum {
  LMD_BATCH_JOIN = 1u << 0,           /* a request may start while others generate: it joins
                                         the running batch between two steps */
  LMD_BATCH_CHUNKED_PREFILL = 1u << 1 /* joining prompts are prefilled in chunks of at most
                                         max_step_tokens per step, between decode steps */
};

#define LMD_MAX_IDS 32

typedef struct lmd_engine lmd_engine; /* opaque */
typedef struct lmd_stream lmd_stream; /* opaque */

/* Caller-owned error buffer. The library writes code and a NUL-terminated,
 * human-readable message (truncated to fit) when a call fails. */
typedef struct lmd_error {
  uint32_t struct_size;
  int32_t code;
  char message[1016];
} lmd_error;

/* Static facts about a created engine. */
typedef struct lmd_info {
  uint32_t struct_size;
  uint32_t vocab_size;
  char backend[32];   /* e.g. "ref-cpu", "ref-cuda", "trtllm" */
  char version[64];   /* the backend's own version string */
  char model[128];    /* what was loaded, e.g. "random:tiny seed=1" or a directory */
  char dtype[16];     /* compute type: "fp32", "fp16", "bf16" */
  uint32_t tp_size;
  uint32_t n_devices;
  int32_t device_ids[16];
  uint32_t n_eos;
  int32_t eos_ids[LMD_MAX_IDS]; /* the model's EOS set as the engine knows it */
  uint32_t max_seq_len;   /* prompt + generated tokens; 0 = no limit known */
  uint32_t max_input_len; /* prompt tokens; 0 = no limit known */
  uint32_t caps;          /* LMD_CAP_* bits */
  uint32_t reserved;
  /* ABI 1.1. */
  uint32_t max_sequences;   /* streams open at once; 0 (ABI 1.0) or 1: one */
  uint32_t batch_flags;     /* LMD_BATCH_* bits */
  uint32_t max_step_tokens; /* tokens one engine step processes across sequences; 0 unknown */
  uint32_t reserved2;
} lmd_info;

/* One generation request. Arrays are read during start() only. */
typedef struct lmd_request {
  uint32_t struct_size;
  uint32_t n_prompt;
  const int32_t* prompt;       /* token ids, never text */
  uint32_t max_new_tokens;
  uint32_t min_new_tokens;     /* stops and EOS are ignored before this many */
  uint32_t ignore_eos;         /* 1: the engine's EOS ids never end generation */
  uint32_t n_stop;             /* number of stop sequences */
  const int32_t* stop_tokens;  /* all stop sequences, concatenated */
  const uint32_t* stop_ends;   /* n_stop cumulative end offsets into stop_tokens */
  uint32_t n_watch;            /* ids whose logprob is reported at each step */
  uint32_t top_k;              /* 0: no top-k limit */
  const int32_t* watch_ids;
  float temperature;           /* 0: greedy */
  float top_p;                 /* 1: no nucleus limit */
  uint64_t seed;               /* sampling seed */
  uint32_t want_logprobs;      /* 1: fill lmd_token.logprob and watched logprobs */
  uint32_t reserved;
} lmd_request;

/* One generated token as first seen on the host. */
typedef struct lmd_token {
  int32_t id;
  uint32_t index;   /* 0-based position among generated tokens */
  int64_t t_ns;     /* now_ns() when the library first saw this token */
  float logprob;    /* NaN when not requested or not available */
  uint32_t bundle;  /* how many tokens became visible in the same observation */
} lmd_token;

/* What one poll() returned. */
typedef struct lmd_poll {
  uint32_t struct_size;
  uint32_t n;    /* tokens written */
  uint32_t done; /* 1: generation ended and every token has been returned */
  uint32_t reserved;
} lmd_poll;

/* The outcome of one generation, valid once poll() reported done. */
typedef struct lmd_result {
  uint32_t struct_size;
  int32_t finish_reason;        /* LMD_FINISH_* */
  int32_t raw_status;           /* the engine's own status code */
  uint32_t prompt_tokens;
  uint32_t output_tokens;
  int32_t cached_prompt_tokens; /* prompt tokens served from a prefix cache; -1 unknown */
  uint32_t max_new_requested;
  uint32_t max_new_effective;   /* after every engine clamp (max_seq_len, session_len) */
  int32_t stop_token;           /* id that ended generation (EOS or stop), else -1 */
  int32_t stop_sequence;        /* index of the matching stop sequence, else -1 */
  int64_t t_submit_ns;          /* start() entered */
  int64_t t_first_ns;           /* first token seen; -1 if none */
  int64_t t_last_ns;            /* last token seen; -1 if none */
  int64_t t_done_ns;            /* generation ended */
  int64_t device_prefill_ns;    /* device-side (e.g. CUDA events); -1 unknown */
  int64_t device_decode_ns;
  int64_t engine_first_ns;      /* engine-side timing points on now_ns()'s clock; -1 unknown */
  int64_t engine_last_ns;
  uint32_t ignore_eos_applied;  /* what the engine actually applied */
  uint32_t n_stop_ids;          /* single ids that could end this generation */
  int32_t stop_ids[LMD_MAX_IDS];
  char raw_status_text[64];     /* the engine's name for raw_status */
  char limit_source[128];       /* which limit set max_new_effective, e.g. "max_seq_len=2048 (config)" */
  char detail[256];             /* anything else worth reporting (errors, warnings) */
  /* ABI 1.1. */
  int64_t t_scheduled_ns;       /* the engine took the request into its batch (prefill began); -1 unknown */
  float mean_batch;             /* mean sequences per engine step that gave this request a token; NaN unknown */
  uint32_t max_batch;           /* most sequences in one such step; 0 unknown */
} lmd_result;

typedef struct lmd_api {
  uint32_t struct_size; /* sizeof(lmd_api) of the library */
  uint32_t abi_major;   /* LMDRIVE_ABI_MAJOR the library was built with */
  uint32_t abi_minor;
  uint32_t reserved;

  /* CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp. */
  int64_t (*now_ns)(void);

  /* Creates an engine from a JSON object (UTF-8, NUL-terminated). Loads
   * weights; returns when the engine is ready to generate. */
  int32_t (*create)(const char* config_json, lmd_engine** out, lmd_error* err);

  /* Fills out. With e == NULL it describes the library itself: only
   * backend, version and caps are filled (used by `lmdrive engines` without
   * loading a model). */
  int32_t (*info)(lmd_engine* e, lmd_info* out, lmd_error* err);

  /* Starts one generation. The request is copied; the stream belongs to the
   * caller until close(). LMD_ERR_BUSY when max_sequences streams are open. */
  int32_t (*start)(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err);

  /* Waits up to timeout_ns (0: do not wait) for tokens and writes up to cap of
   * them. watch_logprobs, if not NULL, receives n_watch floats per token,
   * row by row. out->done is 1 once generation ended and all tokens were
   * returned. */
  int32_t (*poll)(lmd_stream* s, lmd_token* tokens, float* watch_logprobs, uint32_t cap,
                  int64_t timeout_ns, lmd_poll* out, lmd_error* err);

  /* Asks the generation to end as soon as possible; thread-safe. */
  int32_t (*cancel)(lmd_stream* s);

  /* Fills the result; LMD_ERR_STATE before poll() reported done. */
  int32_t (*result)(lmd_stream* s, lmd_result* out, lmd_error* err);

  /* Cancels if needed, waits for the engine's threads, frees the stream. */
  void (*close)(lmd_stream* s);

  void (*destroy)(lmd_engine* e);

  /* ABI 1.1. Starts n generations that enter the engine in the same step
   * (their prompts are prefilled together): all of them or, on any error,
   * none (out is then untouched). reqs holds n pointers; out receives n
   * streams, each closed on its own. LMD_ERR_BUSY when fewer than n of
   * max_sequences are free; LMD_ERR_INVALID names the request at fault. */
  int32_t (*start_batch)(lmd_engine* e, uint32_t n, const lmd_request* const* reqs,
                         lmd_stream** out, lmd_error* err);
} lmd_api;

/* The entry point lmdrive looks up. Never returns NULL for a working library. */
const lmd_api* lmdrive_get_api(void);

#ifdef __cplusplus
}
#endif

#endif /* LMDRIVE_H */
