// The CUDA backend's model: Qwen2 in fp16 or bf16 on one or more GPUs of one
// host, tensor-parallel with one host thread per GPU.
//
// Sharding (rank r of tp):
//   q/k/v, gate/up  column-parallel: heads [r*qh, +qh), kv heads [r*kvh, +kvh),
//                   intermediate rows [r*I/tp, +I/tp)
//   o, down         row-parallel: the matching input columns; each rank's
//                   partial sum (fp32) is all-reduced: two all-reduces a layer
//   embed_tokens    replicated (one row is read per token)
//   lm_head         split by vocabulary rows; each rank copies its logits
//                   slice into the host buffer (the gather happens on the host)
//   norms           replicated
//
// The work is split by job: model_setup.cu creates the ranks (streams,
// handles, device buffers, KV cache, peer access), weights.cu loads the
// weights, model_step.cu runs a forward (the kernels of one step, the decode
// graph, the copies back to the host), plugin.cu is the C entry points.
#pragma once

#include <memory>
#include <vector>

#if LMDREF_HAVE_NCCL
#include <nccl.h>
#endif

#include "attention.h"
#include "common.h"
#include "device_buffers.h"
#include "kernels.h"
#include "model_shape.h"
#include "options.h"
#include "plugin_abi.h"
#include "weights.h"
#include "workers.h"

namespace lmdcu {

#if LMDREF_HAVE_NCCL
#define NCCL_CHECK(call)                                                                 \
  do {                                                                                   \
    ncclResult_t r_ = (call);                                                            \
    if (r_ != ncclSuccess)                                                               \
      throw Error(LMD_ERR_ENGINE, std::string("NCCL error in " #call ": ") +            \
                                      ncclGetErrorString(r_));                           \
  } while (0)
#endif

// What a forward hands back to the host: every logit of the last n_logits
// positions, or (one position) the greedy choice of each rank's vocabulary
// slice and the logits of a few watched ids.
struct Output {
  float* logits = nullptr;  // n_logits × vocab
  Pick* picks = nullptr;    // one per rank, indices global
  const int32_t* watch = nullptr;
  int n_watch = 0;
  float* watch_logits = nullptr;
};

// Thrown by step() for a sequence that outgrew its range of the KV cache.
class SequenceFull : public Error {
 public:
  SequenceFull(int slot, const std::string& m) : Error(LMD_ERR_NOMEM, m), slot_(slot) {}
  int slot() const { return slot_; }

 private:
  int slot_;
};

class Model {
 public:
  virtual ~Model() = default;
  // One sequence from position 0 of the cache (no sequence may be open).
  virtual void forward(const int32_t* tokens, int n, int start_pos, int n_logits,
                       const Output& out) = 0;
  // Sequences of a batched step (plugin_abi.h): each holds a contiguous
  // range of the KV cache from open to close.
  virtual int max_sequences() const = 0;
  virtual int open_sequence(int positions) = 0;  // -1: no room now
  virtual void close_sequence(int slot) = 0;
  // picks: [emitting sequence][rank], for the sequences that want a choice.
  virtual void step(const int32_t* tokens, const lmdref_cuda_seq* seqs, int n_seqs,
                    Pick* picks) = 0;
  virtual int tp() const = 0;
  virtual int64_t last_device_ns() const = 0;
  virtual const char* dtype() const = 0;
  virtual const Options& options() const = 0;
};

// dtype "fp16" or "bf16" (anything else: LMD_ERR_UNSUPPORTED).
std::unique_ptr<Model> make_model(const Shape& s, const lmdref_cuda_weights* w,
                                  std::vector<int> devices, const std::string& dtype,
                                  const Options& opt, int max_sequences);

template <typename T>
class CudaModel : public Model {
 public:
  CudaModel(const Shape& s, const lmdref_cuda_weights* w, std::vector<int> devices,
            const Options& opt, int max_sequences);
  ~CudaModel() override;

  void forward(const int32_t* tokens, int n, int start_pos, int n_logits,
               const Output& out) override;
  int max_sequences() const override { return int(ranges_.size()); }
  int open_sequence(int positions) override;
  void close_sequence(int slot) override;
  void step(const int32_t* tokens, const lmdref_cuda_seq* seqs, int n_seqs, Pick* picks) override;
  int tp() const override { return s_.tp; }
  int64_t last_device_ns() const override { return last_ns_; }
  const char* dtype() const override { return dtype_.c_str(); }
  const Options& options() const override { return opt_; }

 private:
  // The prefill's MLP runs in passes of at most this many rows (its gate|up
  // activations are 2 × intermediate wide): cut into equal passes, so that
  // no pass is a small GEMM that fills the GPU badly.
  static constexpr int kMlpRows = 8192;
  // Activations for up to `rows` tokens (and `logit_rows` logit rows,
  // whose normed hidden states hl the lm_head reads).
  struct Acts {
    int rows = 0, logit_rows = 0, mlp_rows = 0;
    DevBuf x, h, qkv, q, attn, out, gu, act, logits, tokens, hl;
  };
  // A sequence's range of the KV cache: positions [0, len) at cache
  // indices [base, base + len).
  struct KvRange {
    bool used = false;
    int base = 0, len = 0;
  };
  // A batched step, laid out once for every rank: where each sequence's rows
  // are, and the int32 arrays the kernels read (copied to each rank).
  struct BatchPlan {
    int n = 0;                  // rows
    std::vector<int> row0;      // first row of each sequence
    std::vector<int32_t> meta;  // tokens, row_pos, row_base, states, dec_states, dec_rows, emit_rows
    int o_pos = 0, o_base = 0, o_states = 0, o_dec_states = 0, o_dec_rows = 0, o_emit = 0;
    int decoding = 0, emitting = 0;
    bool any_logits = false, any_choice = false;
  };
  // One GPU: its stream, handles, weights, cache and buffers; used only by
  // its own host thread.
  struct Rank {
    int rank = 0, device = 0, v0 = 0, v1 = 0, sms = 0;
    int pos = 0;                 // the position of this forward's first token (host copy)
    int base = 0;                // its sequence's first cache index (host copy)
    bool sm90_prefill = false;   // the Hopper prefill attention runs here
    cudaStream_t stream = nullptr;
    Launch kernels;  // where this rank's kernels go: stream, early start where the GPU has it
    cublasHandle_t blas = nullptr;
    cudaEvent_t ev0 = nullptr, ev1 = nullptr;
#if LMDREF_HAVE_NCCL
    ncclComm_t comm = nullptr;
#endif
    RankWeights<T> w;
    DevBuf kv, blas_ws, inv_freq, small, part_o, part_ml, counters;
    DecodeSplits splits;
    // A greedy decode step queued ahead (one GPU): for position `pos`, with
    // the token the GPU chose before it (known on the host as `token` once
    // the previous step's copies are done), timed by events[slot].
    struct Ahead {
      bool queued = false;
      int pos = -1, base = -1;
      int32_t token = -1;
      int slot = 0;
    } ahead;
    cudaEvent_t step_ev[2][2] = {};  // [slot][begin, end] of a decode step
    cudaEvent_t copied = nullptr;    // the hand-back copies of a step are done
    DevBuf out2, flags, step;  // peer all-reduce of the decode step
    DevBuf pick;               // PickScratch: the greedy choice on the device
    DevBuf meta;               // a batched step's BatchPlan::meta
    DevBuf picks;              // PickScratch per emitting sequence of a batched step
    DevBuf part_ob, part_mlb;  // partials of the batched decode attention
    HostBuf h_meta, h_picks;
    PeerSet peers_attn{}, peers_mlp{};
    HostBuf h_small, h_tokens, h_logits, h_pick;
    T *kcache = nullptr, *vcache = nullptr;
    int cap = 0;
    Acts pre, dec;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graph_exec = nullptr;
    // Quantized weights: the prefill dequantizes the next layer on `side`
    // while this one computes (model_step.cu); ready: a scratch half holds a
    // layer, free: the GEMMs that read it are done.
    cudaStream_t side = nullptr;
    cudaEvent_t deq_ready[2] = {nullptr, nullptr}, deq_free[2] = {nullptr, nullptr};
  };

  // model_setup.cu
  void init_rank(Rank& R, WeightFeed& feed);
  void enable_peer_allreduce();
  void size_acts(Acts& a, int rows, int logit_rows);
  // model_step.cu
  // Layer l's q|k|v target (q into a.q, k and v into the cache) and the
  // attention over it (a.q against the cache, into a.attn); callers add the
  // positions (state, or row_pos and row_base) and the row count.
  QkvTarget<T> qkv_target(const Rank& R, const Acts& a, int l) const;
  AttentionArgs<T> attention_args(const Rank& R, const Acts& a, int l) const;
  void step(Rank& R, Acts& a, int n, int n_logits, const int32_t* d_tokens, bool gemv);
  void decode_step_stream(Rank& R, Acts& a, const int32_t* d_tokens);
  void decode_ahead(Rank& R, const int32_t* tokens, int start_pos, int base, int len,
                    const Output& out);
  void enqueue_hand_back(Rank& R, const Acts& a, const Output& out);
  void finish_hand_back(Rank& R, const Output& out);
  void all_reduce(Rank& R, float* buf, size_t count);
  void run_decode_step(Rank& R);
  void rank_forward(Rank& R, const int32_t* tokens, int n, int start_pos, int base, int len,
                    int n_logits, const Output& out);
  void hand_back(Rank& R, const Acts& a, int n_logits, const Output& out);
  // model_batch.cu: a step over several sequences.
  BatchPlan plan_batch(const int32_t* tokens, const lmdref_cuda_seq* seqs, int n_seqs) const;
  void rank_batch(Rank& R, const BatchPlan& p, const lmdref_cuda_seq* seqs, int n_seqs,
                  Pick* picks);
  void check_tokens(const int32_t* tokens, int n) const;
  // A decode step queued ahead is not used after a sequence opens or closes
  // (its cache range may change hands) or a batched step; stream order keeps
  // it harmless.
  void drop_ahead() {
    for (auto& R : ranks_) R->ahead.queued = false;
  }
  bool ahead_enabled() const {
    return s_.tp == 1 && opt_.launch_ahead && opt_.graph && opt_.gemv_decode;
  }

  Shape s_;
  Options opt_;
  std::vector<int> devices_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::unique_ptr<Workers> workers_;
  bool peer_ar_ = false;  // decode all-reduces through peer access
  std::string dtype_;     // info().dtype: "fp16", or "int8/fp16" with quantized weights
  int64_t last_ns_ = -1;
  int cap_ = 0;                  // positions every rank's cache holds
  std::vector<KvRange> ranges_;  // by sequence slot
};

}  // namespace lmdcu
