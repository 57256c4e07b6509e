/* A fake engine library for the driver's tests: it implements the lmdrive
 * ABI with deterministic tokens (id = 1000 + index) and no model, and can be
 * told through its config to misbehave in each phase. Build variants:
 *   -DFAKE_ABI_MAJOR=N   report another ABI major
 *   -DFAKE_NO_ENTRY      export no lmdrive_get_api
 *   -DFAKE_NULL_POLL     leave poll out of the table
 *   -DFAKE_ABI_MINOR=0   an ABI 1.0 library: no 1.1 fields, a table without start_batch
 * Config: {"mode":"ok|crash_load|hang_load|fail_load|crash_prefill|hang_prefill|crash_decode|hang_decode|print_stdout",
 *          "step_us":N, "max_seq":N}  (modes matched by substring; this is a test fixture)
 * A request whose first prompt id is 666 fails after 3 tokens (LMD_FINISH_ERROR),
 * one whose first prompt id is 777 is refused by start (LMD_ERR_INVALID);
 * max_seq (default 1) generations may be in flight at once. */
#include "lmdrive.h"

#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FAKE_ABI_MAJOR
#define FAKE_ABI_MAJOR LMDRIVE_ABI_MAJOR
#endif
#ifndef FAKE_ABI_MINOR
#define FAKE_ABI_MINOR LMDRIVE_ABI_MINOR
#endif

struct lmd_engine { char mode[64]; long step_us; int max_seq; int in_flight; };
struct lmd_stream {
  struct lmd_engine* e;
  lmd_request req;    /* its arrays are not kept: only the counts are read */
  int32_t first_id;   /* prompt[0] */
  uint32_t produced, returned;
  int cancelled;
  int64_t t_submit, t_first, t_last, t_done;
  int finish;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_err(lmd_error* err, int code, const char* msg) {
  if (err) { err->code = code; snprintf(err->message, sizeof err->message, "%s", msg); }
}

static int has(const struct lmd_engine* e, const char* m) { return strstr(e->mode, m) != NULL; }

static void misbehave(const struct lmd_engine* e, const char* phase) {
  char crash[64], hang[64];
  snprintf(crash, sizeof crash, "crash_%s", phase);
  snprintf(hang, sizeof hang, "hang_%s", phase);
  if (has(e, crash)) { fprintf(stderr, "fake engine: about to crash in %s\n", phase); fflush(stderr); abort(); }
  if (has(e, hang)) { fprintf(stderr, "fake engine: hanging in %s\n", phase); fflush(stderr); for (;;) pause(); }
}

static int32_t create(const char* cfg, lmd_engine** out, lmd_error* err) {
  struct lmd_engine* e = calloc(1, sizeof *e);
  const char* m = strstr(cfg, "\"mode\":\"");
  if (m) { m += 8; size_t n = strcspn(m, "\""); if (n >= sizeof e->mode) n = sizeof e->mode - 1; memcpy(e->mode, m, n); }
  const char* s = strstr(cfg, "\"step_us\":");
  e->step_us = s ? atol(s + 10) : 0;
  const char* q = strstr(cfg, "\"max_seq\":");
  e->max_seq = q ? atoi(q + 10) : 1;
  if (has(e, "fail_load")) { free(e); set_err(err, LMD_ERR_INVALID, "fake engine: told to fail"); return LMD_ERR_INVALID; }
  misbehave(e, "load");
  if (has(e, "print_stdout")) { printf("fake engine: this line must not reach the protocol\n"); fflush(stdout); }
  *out = e;
  return LMD_OK;
}

static int32_t info(lmd_engine* e, lmd_info* out, lmd_error* err) {
  (void)e; (void)err;
  uint32_t size = out->struct_size;
  memset(out, 0, size);
  out->struct_size = size;
  out->vocab_size = 4096;
  snprintf(out->backend, sizeof out->backend, "fake");
  snprintf(out->version, sizeof out->version, "fake 0.1");
  snprintf(out->model, sizeof out->model, "none");
  snprintf(out->dtype, sizeof out->dtype, "fp32");
  out->tp_size = 1;
  out->n_eos = 1;
  out->eos_ids[0] = 7;
  out->max_seq_len = 1 << 20;
  out->caps = LMD_CAP_LOGPROBS;
#if FAKE_ABI_MINOR >= 1
  if (e && size >= sizeof(lmd_info)) {
    out->max_sequences = (uint32_t)e->max_seq;
    out->batch_flags = LMD_BATCH_JOIN;
  }
#endif
  return LMD_OK;
}

/* The stream's generation ended: it no longer counts against max_seq. */
static void end(lmd_stream* s, int finish) {
  s->finish = finish;
  __atomic_sub_fetch(&s->e->in_flight, 1, __ATOMIC_SEQ_CST);
}

static int32_t start(lmd_engine* e, const lmd_request* req, lmd_stream** out, lmd_error* err) {
  if (req->n_prompt == 0) { set_err(err, LMD_ERR_INVALID, "fake engine: empty prompt"); return LMD_ERR_INVALID; }
  if (req->prompt[0] == 777) { set_err(err, LMD_ERR_INVALID, "fake engine: prompt id 777 is refused"); return LMD_ERR_INVALID; }
  if (__atomic_add_fetch(&e->in_flight, 1, __ATOMIC_SEQ_CST) > e->max_seq) {
    __atomic_sub_fetch(&e->in_flight, 1, __ATOMIC_SEQ_CST);
    set_err(err, LMD_ERR_BUSY, "fake engine: max_seq generations in flight");
    return LMD_ERR_BUSY;
  }
  struct lmd_stream* s = calloc(1, sizeof *s);
  s->e = e;
  s->req = *req;
  s->first_id = req->prompt[0];
  s->t_submit = now_ns();
  s->t_first = s->t_last = -1;
  *out = s;
  return LMD_OK;
}

__attribute__((unused)) static int32_t poll_(lmd_stream* s, lmd_token* toks, float* watch, uint32_t cap, int64_t timeout_ns,
                     lmd_poll* out, lmd_error* err) {
  (void)watch; (void)timeout_ns; (void)err;
  out->n = 0;
  out->done = 0;
  if (s->produced == 0) misbehave(s->e, "prefill");
  else if (s->produced >= 2) misbehave(s->e, "decode");
  while (out->n < cap && !s->finish) {
    if (__atomic_load_n(&s->cancelled, __ATOMIC_SEQ_CST)) { end(s, LMD_FINISH_CANCELLED); break; }
    if (s->first_id == 666 && s->produced == 3) { end(s, LMD_FINISH_ERROR); break; }
    if (s->e->step_us) usleep((useconds_t)s->e->step_us);
    lmd_token* t = &toks[out->n++];
    t->id = 1000 + (int32_t)s->produced;
    t->index = s->produced++;
    t->t_ns = now_ns();
    t->logprob = NAN;
    t->bundle = 1;
    if (s->t_first < 0) s->t_first = t->t_ns;
    s->t_last = t->t_ns;
    if (s->produced == s->req.max_new_tokens) end(s, LMD_FINISH_LENGTH);
    if (s->e->step_us) break; /* one token per poll when pacing */
  }
  if (s->finish) { s->t_done = now_ns(); out->done = 1; }
  return LMD_OK;
}

static int32_t cancel(lmd_stream* s) { __atomic_store_n(&s->cancelled, 1, __ATOMIC_SEQ_CST); return LMD_OK; }

static int32_t result(lmd_stream* s, lmd_result* out, lmd_error* err) {
  if (!s->finish) { set_err(err, LMD_ERR_STATE, "fake engine: not done"); return LMD_ERR_STATE; }
  uint32_t size = out->struct_size;
  memset(out, 0, size);
  out->struct_size = size;
  out->finish_reason = s->finish;
  out->raw_status = s->finish;
  out->prompt_tokens = s->req.n_prompt;
  out->output_tokens = s->produced;
  out->max_new_requested = out->max_new_effective = s->req.max_new_tokens;
  out->stop_token = out->stop_sequence = -1;
  out->t_submit_ns = s->t_submit;
  out->t_first_ns = s->t_first;
  out->t_last_ns = s->t_last;
  out->t_done_ns = s->t_done;
  out->device_prefill_ns = out->device_decode_ns = out->engine_first_ns = out->engine_last_ns = -1;
  snprintf(out->raw_status_text, sizeof out->raw_status_text, "fake-%d", s->finish);
  return LMD_OK;
}

static void close_(lmd_stream* s) {
  if (!s->finish) __atomic_sub_fetch(&s->e->in_flight, 1, __ATOMIC_SEQ_CST);
  free(s);
}

__attribute__((unused)) static int32_t start_batch(lmd_engine* e, uint32_t n, const lmd_request* const* reqs, lmd_stream** out,
                           lmd_error* err) {
  if ((int)n > e->max_seq - __atomic_load_n(&e->in_flight, __ATOMIC_SEQ_CST)) {
    set_err(err, LMD_ERR_BUSY, "fake engine: the batch does not fit max_seq");
    return LMD_ERR_BUSY;
  }
  for (uint32_t i = 0; i < n; ++i) {
    int32_t rc = start(e, reqs[i], &out[i], err);
    if (rc != LMD_OK) {
      for (uint32_t j = 0; j < i; ++j) close_(out[j]);
      return rc;
    }
  }
  return LMD_OK;
}
static void destroy(lmd_engine* e) { free(e); }

static const lmd_api api = {
#if FAKE_ABI_MINOR >= 1
  sizeof(lmd_api),
#else
  offsetof(lmd_api, start_batch), /* an ABI 1.0 table ends before start_batch */
#endif
  FAKE_ABI_MAJOR, FAKE_ABI_MINOR, 0,
  now_ns, create, info, start,
#ifdef FAKE_NULL_POLL
  NULL,
#else
  poll_,
#endif
  cancel, result, close_, destroy,
#if FAKE_ABI_MINOR >= 1
  start_batch,
#else
  NULL,
#endif
};

#ifndef FAKE_NO_ENTRY
const lmd_api* lmdrive_get_api(void) { return &api; }
#else
const lmd_api* lmdrive_not_it(void) { return &api; }
#endif
