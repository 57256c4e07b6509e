// The CUDA backend of the reference engine: Qwen2 in fp16 or bf16 on one or
// more GPUs of one host, tensor-parallel over NCCL with one host thread per
// GPU. Built as liblmdrive_ref_cuda.so and reached through plugin_abi.h.
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
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if LMDREF_HAVE_NCCL
#include <nccl.h>
#endif

#include "attention.h"
#include "common.h"
#include "kernels.h"
#include "plugin_abi.h"
#include "quant.h"

namespace lmdcu {
namespace {

#if LMDREF_HAVE_NCCL
#define NCCL_CHECK(call)                                                                 \
  do {                                                                                   \
    ncclResult_t r_ = (call);                                                            \
    if (r_ != ncclSuccess)                                                               \
      throw Error(LMD_ERR_ENGINE, std::string("NCCL error in " #call ": ") +            \
                                      ncclGetErrorString(r_));                           \
  } while (0)
#endif

std::string fmt_gb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f GB", bytes / 1e9);
  return b;
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

// ---------------------------------------------------------------------------
// One host thread per GPU. run() hands every thread the same job (called with
// its rank), waits for all of them and rethrows the first failure.
class Workers {
 public:
  explicit Workers(std::vector<int> devices) : devices_(std::move(devices)) {
    errors_.resize(devices_.size());
    for (size_t r = 0; r < devices_.size(); ++r) threads_.emplace_back([this, r] { loop(int(r)); });
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return int(devices_.size()); }

  void run(const std::function<void(int)>& job) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &job;
      pending_ = size();
      for (auto& e : errors_) e = {0, ""};
      ++generation_;
    }
    cv_.notify_all();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
    for (auto& e : errors_)
      if (e.first) throw Error(e.first, e.second);
  }

 private:
  void loop(int rank) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      std::pair<int32_t, std::string> err{0, ""};
      try {
        CU_CHECK(cudaSetDevice(devices_[rank]));
        (*job)(rank);
      } catch (const Error& e) {
        err = {e.code(), e.what()};
      } catch (const std::bad_alloc&) {
        err = {LMD_ERR_NOMEM, "out of host memory"};
      } catch (const std::exception& e) {
        err = {LMD_ERR_ENGINE, e.what()};
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (err.first) errors_[rank] = {err.first, "GPU " + std::to_string(devices_[rank]) + ": " + err.second};
        if (--pending_ == 0) done_cv_.notify_all();
      }
    }
  }

  std::vector<int> devices_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<std::pair<int32_t, std::string>> errors_;
};

// Device memory that frees itself.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() { release(); }
  void release() {
    if (p) cudaFree(p);
    p = nullptr;
    bytes = 0;
  }
  void alloc(size_t n) {
    release();
    if (n == 0) return;
    CU_CHECK(cudaMalloc(&p, n));
    bytes = n;
  }
  // Grows to at least n bytes; the old contents are lost.
  void reserve(size_t n) {
    if (n > bytes) alloc(n);
  }
};

struct HostBuf {
  void* p = nullptr;
  size_t bytes = 0;
  HostBuf() = default;
  HostBuf(const HostBuf&) = delete;
  HostBuf& operator=(const HostBuf&) = delete;
  ~HostBuf() {
    if (p) cudaFreeHost(p);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (p) cudaFreeHost(p);
    p = nullptr;
    bytes = 0;
    CU_CHECK(cudaHostAlloc(&p, n, cudaHostAllocDefault));
    bytes = n;
  }
};

template <typename U, typename B> U* ptr(const B& b) { return static_cast<U*>(b.p); }

struct Shape {
  int H = 0, I = 0, V = 0, layers = 0, heads = 0, kv_heads = 0, hd = 0;
  int tp = 1;
  int qh = 0, kvh = 0, Ql = 0, KVl = 0, QKVl = 0, Il = 0;  // per rank
  bool tied = false;
  bool quant = false;   // Linear weights int8/fp8 (quant.h), activations in T
  QFormat qf = QFormat::Int8;
  bool q_head = false;  // lm_head quantized too
  float eps = 1e-6f;
  double theta = 10000;
  uint32_t max_seq_len = 0;
};

// Weight reads from the core library's WeightSource (serialised: one reader
// at a time), or random weights generated on the device.
class WeightFeed {
 public:
  explicit WeightFeed(const lmdref_cuda_weights* w) : w_(w) {}

  // Block [row0, row0+rows) × [col0, col0+cols) of tensor `name`, whose shape
  // is full_rows × full_cols (1-D tensors: full_cols = 1), into dst (row stride ld).
  template <typename T>
  void load(const std::string& name, uint64_t full_rows, uint64_t full_cols, uint64_t row0,
            uint64_t rows, uint64_t col0, uint64_t cols, T* dst, uint64_t ld, cudaStream_t s,
            DevBuf& staging) {
    char err[1024] = {0};
    if (w_->random) {
      uint64_t key = 0;
      float scale = 1.f;
      int32_t plus_one = 0;
      const uint64_t in = full_cols > 1 ? full_cols : full_rows;
      const int32_t rc = w_->rule(w_->ctx, name.c_str(), in, &key, &scale, &plus_one, err, sizeof err);
      if (rc) throw Error(rc, err);
      launch_random_fill<T>(key, scale, plus_one != 0, full_cols, row0, col0, rows, cols, dst, ld,
                            Launch{s, false});
      return;
    }
    const uint64_t block_rows = std::max<uint64_t>(1, (uint64_t(1) << 24) / full_cols);
    std::vector<float> host;
    for (uint64_t r = 0; r < rows; r += block_rows) {
      const uint64_t nr = std::min(block_rows, rows - r);
      host.resize(nr * full_cols);
      {
        std::lock_guard<std::mutex> lk(mu_);
        const int32_t rc = w_->read(w_->ctx, name.c_str(), (row0 + r) * full_cols, nr * full_cols,
                                    host.data(), err, sizeof err);
        if (rc) throw Error(rc, err);
      }
      staging.reserve(host.size() * sizeof(float));
      CU_CHECK(cudaMemcpyAsync(staging.p, host.data(), host.size() * sizeof(float),
                               cudaMemcpyHostToDevice, s));
      launch_convert<T>(ptr<float>(staging), full_cols, col0, nr, cols, dst + r * ld, ld,
                        Launch{s, false});
      CU_CHECK(cudaStreamSynchronize(s));
    }
  }

  // The same block quantized (quant.h): whole rows [row0, row0+rows) are
  // made in fp32 (the scale of a row needs all of it, also where the rank
  // keeps only columns [col0, col0+cols)), then the rank's bytes and the
  // rows' scales are written.
  void load_quantized(const std::string& name, uint64_t full_rows, uint64_t full_cols,
                      uint64_t row0, uint64_t rows, uint64_t col0, uint64_t cols, QFormat f,
                      const QMatrix& dst, cudaStream_t s, DevBuf& staging, int* bad) {
    char err[1024] = {0};
    const uint64_t block_rows = std::max<uint64_t>(1, (uint64_t(1) << 24) / full_cols);
    RandomRule rule;
    if (w_->random) {
      const int32_t rc = w_->rule(w_->ctx, name.c_str(), full_cols, &rule.key, &rule.scale,
                                  &rule.plus_one, err, sizeof err);
      if (rc) throw Error(rc, err);
    }
    std::vector<float> host;
    for (uint64_t r = 0; r < rows; r += block_rows) {
      const uint64_t nr = std::min(block_rows, rows - r);
      staging.reserve(nr * full_cols * sizeof(float));
      if (w_->random) {
        launch_random_fill<float>(rule.key, rule.scale, rule.plus_one != 0, full_cols, row0 + r, 0,
                                  nr, full_cols, ptr<float>(staging), full_cols, Launch{s, false});
      } else {
        host.resize(nr * full_cols);
        {
          std::lock_guard<std::mutex> lk(mu_);
          const int32_t rc = w_->read(w_->ctx, name.c_str(), (row0 + r) * full_cols,
                                      nr * full_cols, host.data(), err, sizeof err);
          if (rc) throw Error(rc, err);
        }
        CU_CHECK(cudaMemcpyAsync(staging.p, host.data(), host.size() * sizeof(float),
                                 cudaMemcpyHostToDevice, s));
      }
      launch_quantize(f, ptr<float>(staging), nr, full_cols, col0, cols, dst.q + r * cols,
                      dst.scale + r, bad, Launch{s, false});
      CU_CHECK(cudaStreamSynchronize(s));
    }
    int host_bad = 0;
    CU_CHECK(cudaMemcpy(&host_bad, bad, sizeof host_bad, cudaMemcpyDeviceToHost));
    if (host_bad)
      throw Error(LMD_ERR_INVALID, "tensor \"" + name +
                                       "\" holds a NaN or infinite weight; it cannot be quantized");
  }

 private:
  struct RandomRule {
    uint64_t key = 0;
    float scale = 1.f;
    int32_t plus_one = 0;
  };
  const lmdref_cuda_weights* w_;
  std::mutex mu_;
};

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

class Model {
 public:
  virtual ~Model() = default;
  virtual void forward(const int32_t* tokens, int n, int start_pos, int n_logits,
                       const Output& out) = 0;
  virtual int tp() const = 0;
  virtual int64_t last_device_ns() const = 0;
  virtual const char* dtype() const = 0;
};

template <typename T>
class CudaModel : public Model {
 public:
  CudaModel(const Shape& s, const lmdref_cuda_weights* w, std::vector<int> devices);
  ~CudaModel() override;

  void forward(const int32_t* tokens, int n, int start_pos, int n_logits,
               const Output& out) override;
  int tp() const override { return s_.tp; }
  int64_t last_device_ns() const override { return last_ns_; }
  const char* dtype() const override { return dtype_.c_str(); }

 private:
  struct Layer {
    T *in_norm, *post_norm, *qkv_w, *qkv_b, *o_w, *gu_w, *down_w;
    QMatrix qkv_q, o_q, gu_q, down_q;  // when s_.quant (the T pointers are then null)
  };
  // Activations for up to `rows` tokens (and `logit_rows` logit rows).
  struct Acts {
    int rows = 0, logit_rows = 0, mlp_rows = 0;
    DevBuf x, h, qkv, q, attn, out, gu, act, logits, tokens;
  };
  struct Rank {
    int rank = 0, device = 0, v0 = 0, v1 = 0, sms = 0, splits = 1;
    cudaStream_t stream = nullptr;
    Launch kernels;  // where this rank's kernels go: R.stream, early start where the GPU has it
    cublasHandle_t blas = nullptr;
    cudaEvent_t ev0 = nullptr, ev1 = nullptr;
#if LMDREF_HAVE_NCCL
    ncclComm_t comm = nullptr;
#endif
    DevBuf weights, kv, blas_ws, staging, inv_freq, small, part_o, part_ml;
    DevBuf qweights;  // quantized Linear weights and their scales
    DevBuf deq;       // a layer's weights dequantized to T for the prefill GEMMs
    DevBuf bad;       // quantizer flag: a NaN or infinite weight
    QMatrix lm_head_q;
    DevBuf out2, flags, step;   // peer all-reduce of the decode step
    DevBuf pick;                // PickScratch: the greedy choice on the device
    PeerSet peers_attn{}, peers_mlp{};
    HostBuf h_small, h_tokens, h_logits, h_pick;
    std::vector<Layer> layers;
    T *embed = nullptr, *lm_head = nullptr, *final_norm = nullptr;
    T *kcache = nullptr, *vcache = nullptr;
    int cap = 0;
    Acts pre, dec;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graph_exec = nullptr;
  };

  void init_rank(Rank& R, WeightFeed& feed);
  void size_acts(Acts& a, int rows, int logit_rows);
  void body(Rank& R, Acts& a, int n, int n_logits, const int32_t* d_tokens, bool gemv);
  void gemm(Rank& R, const T* w, int m, int k, const T* x, int n, void* y, cudaDataType_t yt);
  void all_reduce(Rank& R, float* buf, size_t count);
  // The weights of a prefill GEMM: W itself, or q dequantized into R.deq at
  // element offset `at`.
  const T* prefill_weights(Rank& R, const T* w, const QMatrix& q, int rows, int cols, size_t at);
  void rank_forward(Rank& R, const int32_t* tokens, int n, int start_pos, int n_logits,
                    const Output& out);

  Shape s_;
  std::vector<int> devices_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::unique_ptr<Workers> workers_;
  bool use_graph_ = true, gemv_decode_ = true, peer_ar_ = false, early_start_ = true;
  bool t_delta_ = true;
  int64_t last_ns_ = -1;
  std::string dtype_;  // info().dtype: "fp16", or "int8/fp16" with quantized weights
};

template <typename T>
CudaModel<T>::CudaModel(const Shape& s, const lmdref_cuda_weights* w, std::vector<int> devices)
    : s_(s), devices_(std::move(devices)) {
  dtype_ = Types<T>::name();
  if (s_.quant) dtype_ = std::string(s_.qf == QFormat::Int8 ? "int8/" : "fp8/") + dtype_;
  use_graph_ = !env_is("LMDREF_CUDA_GRAPH", "0");
  gemv_decode_ = !env_is("LMDREF_CUDA_DECODE", "cublas");
  early_start_ = !env_is("LMDREF_CUDA_PDL", "0");
  t_delta_ = !env_is("LMDREF_CUDA_DELTA", "fp32");
  const int tp = int(devices_.size());
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess || count == 0)
    throw Error(LMD_ERR_UNSUPPORTED, std::string("no usable CUDA device on this host (") +
                                         (ce != cudaSuccess ? cudaGetErrorString(ce) : "none found") + ")");
  for (int d : devices_)
    if (d < 0 || d >= count)
      throw Error(LMD_ERR_INVALID, "CUDA device " + std::to_string(d) + " does not exist: this host has " +
                                       std::to_string(count) + " CUDA device(s)");
  for (int r = 0; r < tp; ++r) {
    ranks_.emplace_back(new Rank);
    ranks_[r]->rank = r;
    ranks_[r]->device = devices_[r];
  }
#if LMDREF_HAVE_NCCL
  if (tp > 1) {
    std::vector<ncclComm_t> comms(tp);
    NCCL_CHECK(ncclCommInitAll(comms.data(), tp, devices_.data()));
    for (int r = 0; r < tp; ++r) ranks_[r]->comm = comms[r];
  }
#else
  if (tp > 1)
    throw Error(LMD_ERR_UNSUPPORTED,
                "this CUDA backend was built without NCCL: tensor parallelism is unavailable");
#endif
  workers_.reset(new Workers(devices_));
  WeightFeed feed(w);
  workers_->run([&](int r) { init_rank(*ranks_[r], feed); });

  // Decode all-reduces through peer access (one fused kernel with the residual
  // add and RMSNorm) where every pair of GPUs can reach each other;
  // LMDREF_CUDA_AR=nccl keeps NCCL for them. Prefill always uses NCCL.
  if (tp > 1 && tp <= kMaxPeers && !env_is("LMDREF_CUDA_AR", "nccl")) {
    std::vector<int> reach(tp, 1);
    workers_->run([&](int r) {
      for (int p = 0; p < tp; ++p) {
        int ok = 0;
        if (p != r && (cudaDeviceCanAccessPeer(&ok, devices_[r], devices_[p]) != cudaSuccess || !ok))
          reach[r] = 0;
      }
    });
    bool enabled = std::all_of(reach.begin(), reach.end(), [](int v) { return v == 1; });
    if (enabled) {
      try {
        workers_->run([&](int r) {
          for (int p = 0; p < tp; ++p) {
            if (p == r) continue;
            const cudaError_t e = cudaDeviceEnablePeerAccess(devices_[p], 0);
            if (e == cudaErrorPeerAccessAlreadyEnabled)
              cudaGetLastError();
            else
              CU_CHECK(e);
          }
        });
      } catch (const Error& e) {
        std::fprintf(stderr, "lmdrive-ref-cuda: peer access unavailable (%s); NCCL all-reduces\n",
                     e.what());
        enabled = false;
      }
    }
    if (enabled) {
      for (int r = 0; r < tp; ++r) {
        Rank& R = *ranks_[r];
        for (int p = 0; p < tp; ++p) {
          R.peers_attn.part[p] = ptr<float>(ranks_[p]->dec.out);
          R.peers_mlp.part[p] = ptr<float>(ranks_[p]->out2);
          R.peers_attn.flag[p] = R.peers_mlp.flag[p] = ptr<unsigned long long>(ranks_[p]->flags);
        }
      }
      peer_ar_ = true;
    }
  }
}

template <typename T>
CudaModel<T>::~CudaModel() {
  if (!workers_) return;
  try {
    workers_->run([&](int r) {
      Rank& R = *ranks_[r];
      if (R.stream) cudaStreamSynchronize(R.stream);
      if (R.graph_exec) cudaGraphExecDestroy(R.graph_exec);
      if (R.graph) cudaGraphDestroy(R.graph);
#if LMDREF_HAVE_NCCL
      if (R.comm) ncclCommDestroy(R.comm);
#endif
      if (R.blas) cublasDestroy(R.blas);
      if (R.ev0) cudaEventDestroy(R.ev0);
      if (R.ev1) cudaEventDestroy(R.ev1);
      cudaStream_t st = R.stream;
      // Buffers go with the Rank, on this thread, with its device current.
      ranks_[r].reset();
      if (st) cudaStreamDestroy(st);
    });
  } catch (...) {
  }
  workers_.reset();
}

template <typename T>
void CudaModel<T>::init_rank(Rank& R, WeightFeed& feed) {
  const Shape& s = s_;
  const int r = R.rank;
  CU_CHECK(cudaStreamCreateWithFlags(&R.stream, cudaStreamNonBlocking));
  CU_CHECK(cudaEventCreate(&R.ev0));
  CU_CHECK(cudaEventCreate(&R.ev1));
  BLAS_CHECK(cublasCreate(&R.blas));
  BLAS_CHECK(cublasSetStream(R.blas, R.stream));
  R.blas_ws.alloc(32u << 20);
  BLAS_CHECK(cublasSetWorkspace(R.blas, R.blas_ws.p, R.blas_ws.bytes));
  cudaDeviceProp prop;
  CU_CHECK(cudaGetDeviceProperties(&prop, R.device));
  R.sms = prop.multiProcessorCount;
  if (s.quant && s.qf == QFormat::Fp8 && prop.major < 9)
    throw Error(LMD_ERR_UNSUPPORTED,
                "fp8 weights need an sm_90 GPU (H100/H200): " + std::string(prop.name) + " is sm_" +
                    std::to_string(prop.major * 10 + prop.minor) + "; use --precision int8");
  R.kernels = Launch{R.stream, early_start_ && prop.major >= 9};
  // Decode attention: about eight warps (splits) per SM over all kv heads.
  R.splits = 4 * int(std::min<int64_t>(128, std::max<int64_t>(1, ceil_div(2 * R.sms, s.kvh))));

  const int per = int(ceil_div(s.V, s.tp));
  R.v0 = std::min(s.V, r * per);
  R.v1 = std::min(s.V, R.v0 + per);
  const int vloc = R.v1 - R.v0;

  // One allocation for every weight of this rank, each tensor 256-byte aligned.
  const uint64_t H = s.H;
  auto al = [](uint64_t n) { return (n + 127) / 128 * 128; };
  const uint64_t lin_qkv = uint64_t(s.QKVl) * H, lin_o = H * s.Ql;
  const uint64_t lin_gu = 2 * uint64_t(s.Il) * H, lin_down = H * s.Il;
  const uint64_t per_layer = al(H) * 2 + al(s.QKVl) +
                             (s.quant ? 0 : al(lin_qkv) + al(lin_o) + al(lin_gu) + al(lin_down));
  const uint64_t embed_n = al(uint64_t(s.V) * H);
  const uint64_t head_n = s.tied || s.q_head ? 0 : al(uint64_t(vloc) * H);
  const uint64_t total = per_layer * s.layers + embed_n + head_n + al(H);
  // Quantized: one byte a weight and one fp32 scale a row, each piece
  // 256-byte aligned; plus the prefill's dequantization scratch (the largest
  // of q|k|v, o, and gate|up with down).
  auto alb = [](uint64_t n) { return (n + 255) / 256 * 256; };
  auto qbytes = [&](uint64_t rows, uint64_t cols) { return alb(rows * cols) + alb(rows * 4); };
  uint64_t quant_bytes = 0, deq_n = 0;
  if (s.quant) {
    quant_bytes = s.layers * (qbytes(s.QKVl, H) + qbytes(H, s.Ql) + qbytes(2 * uint64_t(s.Il), H) +
                              qbytes(H, s.Il));
    if (s.q_head) quant_bytes += qbytes(vloc, H);
    deq_n = std::max({lin_qkv, lin_o, lin_gu + lin_down});
  }
  const uint64_t weight_bytes = total * sizeof(T) + quant_bytes + deq_n * sizeof(T);
  size_t free_b = 0, total_b = 0;
  CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
  if (weight_bytes + (1ull << 30) > free_b)
    throw Error(LMD_ERR_NOMEM, "the weights need " + fmt_gb(double(weight_bytes)) +
                                   " on this GPU (tp=" + std::to_string(s.tp) + "), " +
                                   fmt_gb(double(free_b)) + " free; use more GPUs (--tp)");
  R.weights.alloc(total * sizeof(T));
  R.qweights.alloc(quant_bytes);
  R.deq.alloc(deq_n * sizeof(T));
  R.bad.alloc(sizeof(int));
  CU_CHECK(cudaMemset(R.bad.p, 0, sizeof(int)));
  uint8_t* qp = ptr<uint8_t>(R.qweights);
  auto take_q = [&](uint64_t rows, uint64_t cols) {
    QMatrix m;
    m.q = qp;
    qp += alb(rows * cols);
    m.scale = reinterpret_cast<float*>(qp);
    qp += alb(rows * 4);
    return m;
  };
  // Rows [first, …) of a quantized matrix with `cols` columns.
  auto rows_of = [](const QMatrix& m, uint64_t first, uint64_t cols) {
    QMatrix r;
    r.q = m.q + first * cols;
    r.scale = m.scale + first;
    return r;
  };
  T* p = ptr<T>(R.weights);
  auto take = [&](uint64_t n) {
    T* q = p;
    p += al(n);
    return q;
  };

  const uint64_t Q = uint64_t(s.heads) * s.hd, KV = uint64_t(s.kv_heads) * s.hd, I = s.I;
  R.layers.resize(s.layers);
  for (int l = 0; l < s.layers; ++l) {
    Layer& L = R.layers[l];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    L = Layer{};
    L.in_norm = take(H);
    L.post_norm = take(H);
    L.qkv_b = take(s.QKVl);
    if (s.quant) {
      L.qkv_q = take_q(s.QKVl, H);
      L.o_q = take_q(H, s.Ql);
      L.gu_q = take_q(2 * uint64_t(s.Il), H);
      L.down_q = take_q(H, s.Il);
    } else {
      L.qkv_w = take(uint64_t(s.QKVl) * H);
      L.o_w = take(H * s.Ql);
      L.gu_w = take(2 * uint64_t(s.Il) * H);
      L.down_w = take(H * s.Il);
    }
    cudaStream_t st = R.stream;
    feed.load<T>(pre + "input_layernorm.weight", H, 1, 0, H, 0, 1, L.in_norm, 1, st, R.staging);
    feed.load<T>(pre + "post_attention_layernorm.weight", H, 1, 0, H, 0, 1, L.post_norm, 1, st, R.staging);
    const uint64_t qr = uint64_t(r) * s.Ql, kr = uint64_t(r) * s.KVl;
    const uint64_t ir = uint64_t(r) * s.Il;
    if (s.quant) {
      int* bad = ptr<int>(R.bad);
      feed.load_quantized(pre + "self_attn.q_proj.weight", Q, H, qr, s.Ql, 0, H, s.qf,
                          rows_of(L.qkv_q, 0, H), st, R.staging, bad);
      feed.load_quantized(pre + "self_attn.k_proj.weight", KV, H, kr, s.KVl, 0, H, s.qf,
                          rows_of(L.qkv_q, s.Ql, H), st, R.staging, bad);
      feed.load_quantized(pre + "self_attn.v_proj.weight", KV, H, kr, s.KVl, 0, H, s.qf,
                          rows_of(L.qkv_q, s.Ql + s.KVl, H), st, R.staging, bad);
      // Row-parallel o and down: every output row, the rank's columns; the
      // scales are those of the whole rows, the same on every rank.
      feed.load_quantized(pre + "self_attn.o_proj.weight", H, Q, 0, H, qr, s.Ql, s.qf, L.o_q, st,
                          R.staging, bad);
      feed.load_quantized(pre + "mlp.gate_proj.weight", I, H, ir, s.Il, 0, H, s.qf,
                          rows_of(L.gu_q, 0, H), st, R.staging, bad);
      feed.load_quantized(pre + "mlp.up_proj.weight", I, H, ir, s.Il, 0, H, s.qf,
                          rows_of(L.gu_q, s.Il, H), st, R.staging, bad);
      feed.load_quantized(pre + "mlp.down_proj.weight", H, I, 0, H, ir, s.Il, s.qf, L.down_q, st,
                          R.staging, bad);
    } else {
      feed.load<T>(pre + "self_attn.q_proj.weight", Q, H, qr, s.Ql, 0, H, L.qkv_w, H, st, R.staging);
      feed.load<T>(pre + "self_attn.k_proj.weight", KV, H, kr, s.KVl, 0, H, L.qkv_w + s.Ql * H, H, st, R.staging);
      feed.load<T>(pre + "self_attn.v_proj.weight", KV, H, kr, s.KVl, 0, H,
                   L.qkv_w + (s.Ql + s.KVl) * H, H, st, R.staging);
    }
    feed.load<T>(pre + "self_attn.q_proj.bias", Q, 1, qr, s.Ql, 0, 1, L.qkv_b, 1, st, R.staging);
    feed.load<T>(pre + "self_attn.k_proj.bias", KV, 1, kr, s.KVl, 0, 1, L.qkv_b + s.Ql, 1, st, R.staging);
    feed.load<T>(pre + "self_attn.v_proj.bias", KV, 1, kr, s.KVl, 0, 1, L.qkv_b + s.Ql + s.KVl, 1, st,
                 R.staging);
    if (!s.quant) {
      feed.load<T>(pre + "self_attn.o_proj.weight", H, Q, 0, H, qr, s.Ql, L.o_w, s.Ql, st, R.staging);
      feed.load<T>(pre + "mlp.gate_proj.weight", I, H, ir, s.Il, 0, H, L.gu_w, H, st, R.staging);
      feed.load<T>(pre + "mlp.up_proj.weight", I, H, ir, s.Il, 0, H, L.gu_w + uint64_t(s.Il) * H, H,
                   st, R.staging);
      feed.load<T>(pre + "mlp.down_proj.weight", H, I, 0, H, ir, s.Il, L.down_w, s.Il, st, R.staging);
    }
  }
  R.embed = take(uint64_t(s.V) * H);
  feed.load<T>("model.embed_tokens.weight", s.V, H, 0, s.V, 0, H, R.embed, H, R.stream, R.staging);
  if (s.q_head) {
    // The embedding stays in T even when tied: only the head is quantized.
    R.lm_head_q = take_q(vloc, H);
    feed.load_quantized(s.tied ? "model.embed_tokens.weight" : "lm_head.weight", s.V, H, R.v0, vloc,
                        0, H, s.qf, R.lm_head_q, R.stream, R.staging, ptr<int>(R.bad));
  } else if (s.tied) {
    R.lm_head = R.embed + uint64_t(R.v0) * H;
  } else {
    R.lm_head = take(uint64_t(vloc) * H);
    feed.load<T>("lm_head.weight", s.V, H, R.v0, vloc, 0, H, R.lm_head, H, R.stream, R.staging);
  }
  R.final_norm = take(H);
  feed.load<T>("model.norm.weight", H, 1, 0, H, 0, 1, R.final_norm, 1, R.stream, R.staging);
  CU_CHECK(cudaStreamSynchronize(R.stream));
  R.staging.release();

  // RoPE inverse frequencies, computed as the CPU backend does.
  std::vector<float> inv(s.hd / 2);
  for (int i = 0; i < s.hd / 2; ++i) {
    const float e = float(2 * i) / float(s.hd);
    inv[i] = 1.0f / float(std::pow(double(float(s.theta)), double(e)));
  }
  R.inv_freq.alloc(inv.size() * sizeof(float));
  CU_CHECK(cudaMemcpy(R.inv_freq.p, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));

  R.small.alloc(4 * sizeof(int32_t));
  R.h_small.reserve(4 * sizeof(int32_t));
  R.part_o.alloc(size_t(s.qh) * R.splits * s.hd * sizeof(float));
  R.part_ml.alloc(size_t(s.qh) * R.splits * 2 * sizeof(float));
  CU_CHECK(cudaMemset(R.part_o.p, 0, R.part_o.bytes));
  CU_CHECK(cudaMemset(R.part_ml.p, 0, R.part_ml.bytes));
  size_acts(R.dec, 1, 1);
  R.out2.alloc(size_t(s.H) * sizeof(float));
  R.flags.alloc(kMaxPeers * sizeof(unsigned long long));
  R.step.alloc(sizeof(unsigned long long));
  CU_CHECK(cudaMemset(R.flags.p, 0, R.flags.bytes));
  CU_CHECK(cudaMemset(R.step.p, 0, R.step.bytes));
  R.pick.alloc(sizeof(PickScratch));
  CU_CHECK(cudaMemset(R.pick.p, 0, R.pick.bytes));
  R.h_pick.reserve(sizeof(Pick));
  R.h_logits.reserve(size_t(vloc) * sizeof(float));

  // The KV cache: sized for max_seq_len when it fits, else for what fits.
  const uint64_t per_pos = uint64_t(s.layers) * 2 * s.KVl * sizeof(T);
  CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const uint64_t reserve = std::max<uint64_t>(uint64_t(3) << 30, total_b / 16);
  const uint64_t fit = free_b > reserve ? (free_b - reserve) / per_pos : 0;
  const uint64_t want = std::max<uint32_t>(s.max_seq_len, 2);
  R.cap = int(std::min<uint64_t>(want, fit));
  if (R.cap < 2)
    throw Error(LMD_ERR_NOMEM, "no GPU memory left for the KV cache after the weights (" +
                                   fmt_gb(double(weight_bytes)) + ")");
  if (uint64_t(R.cap) < want && r == 0)
    std::fprintf(stderr, "lmdrive-ref-cuda: KV cache limited to %d positions by GPU memory\n", R.cap);
  R.kv.alloc(per_pos * R.cap);
  R.kcache = ptr<T>(R.kv);
  R.vcache = R.kcache + uint64_t(s.layers) * s.KVl * R.cap;
}

template <typename T>
void CudaModel<T>::size_acts(Acts& a, int rows, int logit_rows) {
  const Shape& s = s_;
  const int vloc = int(ceil_div(s.V, s.tp));
  if (rows > a.rows) {
    a.rows = rows;
    a.mlp_rows = std::min(rows, 4096);
    a.x.alloc(size_t(rows) * s.H * sizeof(T));
    a.h.alloc(size_t(rows) * s.H * sizeof(T));
    a.qkv.alloc(size_t(rows) * s.QKVl * sizeof(float));
    a.q.alloc(size_t(rows) * s.Ql * sizeof(T));
    a.attn.alloc(size_t(rows) * s.Ql * sizeof(T));
    a.out.alloc(size_t(rows) * s.H * sizeof(float));
    a.gu.alloc(size_t(a.mlp_rows) * 2 * s.Il * sizeof(T));
    a.act.alloc(size_t(a.mlp_rows) * s.Il * sizeof(T));
    a.tokens.alloc(size_t(rows) * sizeof(int32_t));
  }
  if (logit_rows > a.logit_rows) {
    a.logit_rows = logit_rows;
    a.logits.alloc(size_t(logit_rows) * vloc * sizeof(float));
  }
}

template <typename T>
void CudaModel<T>::gemm(Rank& R, const T* w, int m, int k, const T* x, int n, void* y,
                        cudaDataType_t yt) {
  const float one = 1.f, zero = 0.f;
  BLAS_CHECK(cublasGemmEx(R.blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w, Types<T>::cuda, k, x,
                          Types<T>::cuda, k, &zero, y, yt, m, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT));
}

template <typename T>
const T* CudaModel<T>::prefill_weights(Rank& R, const T* w, const QMatrix& q, int rows, int cols,
                                       size_t at) {
  if (!q.present()) return w;
  T* dst = ptr<T>(R.deq) + at;
  launch_dequantize<T>(s_.qf, q, rows, cols, dst, R.kernels);
  return dst;
}

template <typename T>
void CudaModel<T>::all_reduce(Rank& R, float* buf, size_t count) {
#if LMDREF_HAVE_NCCL
  if (s_.tp > 1) NCCL_CHECK(ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, R.comm, R.stream));
#else
  (void)R;
  (void)buf;
  (void)count;
#endif
}

// Every kernel of one forward over n tokens, on R.stream. The position comes
// from device memory (R.small[0]) so that the decode step can be a graph.
template <typename T>
void CudaModel<T>::body(Rank& R, Acts& a, int n, int n_logits, const int32_t* d_tokens, bool gemv) {
  const Shape& s = s_;
  const Launch& st = R.kernels;
  const int32_t* state = ptr<int32_t>(R.small);
  T* x = ptr<T>(a.x);
  T* h = ptr<T>(a.h);
  float* out = ptr<float>(a.out);
  const uint64_t layer_kv = uint64_t(s.KVl) * R.cap;
  // Peer all-reduce (decode with the fused matrix-vector kernels): the
  // attention partials go to dec.out, the MLP partials to out2, alternately,
  // so a rank never rewrites a buffer that a peer may still be reading.
  const bool peer = gemv && peer_ar_;
  const unsigned long long* step = ptr<unsigned long long>(R.step);
  float* mlp_out = peer ? ptr<float>(R.out2) : out;
  // On one GPU the prefill's o and down projections leave their outputs in T
  // (cuBLAS rounds once, as a framework's 16-bit Linear does): half the bytes
  // of the fp32 partial sums that an all-reduce needs.
  const bool t_delta = !gemv && s.tp == 1 && t_delta_;
  T* out_t = reinterpret_cast<T*>(out);
  const cudaDataType_t delta_type = t_delta ? Types<T>::cuda : CUDA_R_32F;
  auto delta_at = [&](int64_t off) -> void* {
    return t_delta ? static_cast<void*>(out_t + off) : static_cast<void*>(out + off);
  };
  auto norm = [&](T* xr, bool add, int64_t off, const T* w, T* hr, int rows) {
    if (t_delta)
      launch_rmsnorm<T, T>(xr, add ? out_t + off : nullptr, w, hr, rows, s.H, s.eps, st);
    else
      launch_rmsnorm<T, float>(xr, add ? out + off : nullptr, w, hr, rows, s.H, s.eps, st);
  };
  if (peer) launch_step(ptr<unsigned long long>(R.step), st);
  launch_embed<T>(d_tokens, n, R.embed, s.H, x, st);
  for (int l = 0; l < s.layers; ++l) {
    const Layer& L = R.layers[l];
    T* kc = R.kcache + l * layer_kv;
    T* vc = R.vcache + l * layer_kv;
    if (peer && l > 0)
      launch_allreduce_rmsnorm<T>(R.peers_mlp, s.tp, R.rank, step, 2 * l - 1, x, L.in_norm, h, s.H,
                                  s.eps, st);
    else
      norm(x, l > 0, 0, L.in_norm, h, n);
    if (gemv && s.quant) {
      launch_qgemv_qkv_rope<T>(s.qf, L.qkv_q, L.qkv_b, h, s.H, state, ptr<float>(R.inv_freq), s.qh,
                               s.kvh, s.hd, ptr<T>(a.q), kc, vc, R.cap, st);
    } else if (gemv) {
      launch_gemv_qkv_rope<T>(L.qkv_w, L.qkv_b, h, s.H, state, ptr<float>(R.inv_freq), s.qh, s.kvh,
                              s.hd, ptr<T>(a.q), kc, vc, R.cap, st);
    } else {
      gemm(R, prefill_weights(R, L.qkv_w, L.qkv_q, s.QKVl, s.H, 0), s.QKVl, s.H, h, n, a.qkv.p,
           CUDA_R_32F);
      launch_rope_qkv<T>(ptr<float>(a.qkv), L.qkv_b, n, state, ptr<float>(R.inv_freq), s.qh, s.kvh,
                         s.hd, ptr<T>(a.q), kc, vc, R.cap, st);
    }
    if (n == 1)
      launch_decode_attention<T>(ptr<T>(a.q), kc, vc, R.cap, state, s.qh, s.kvh, s.hd, R.splits,
                                 ptr<float>(R.part_o), ptr<float>(R.part_ml), ptr<T>(a.attn), st);
    else
      launch_prefill_attention<T>(ptr<T>(a.q), kc, vc, R.cap, state, n, s.qh, s.kvh, s.hd,
                                  ptr<T>(a.attn), st);
    if (gemv && s.quant)
      launch_qgemv<T>(s.qf, L.o_q, ptr<T>(a.attn), out, s.H, s.Ql, st);
    else if (gemv)
      launch_gemv<T>(L.o_w, ptr<T>(a.attn), out, s.H, s.Ql, st);
    else
      gemm(R, prefill_weights(R, L.o_w, L.o_q, s.H, s.Ql, 0), s.H, s.Ql, ptr<T>(a.attn), n, out,
           delta_type);
    if (peer) {
      launch_allreduce_rmsnorm<T>(R.peers_attn, s.tp, R.rank, step, 2 * l, x, L.post_norm, h, s.H,
                                  s.eps, st);
    } else {
      all_reduce(R, out, size_t(n) * s.H);
      norm(x, true, 0, L.post_norm, h, n);
    }
    if (gemv && s.quant) {
      launch_qgemv_gate_up<T>(s.qf, L.gu_q, h, s.Il, s.H, ptr<T>(a.act), st);
      launch_qgemv<T>(s.qf, L.down_q, ptr<T>(a.act), mlp_out, s.H, s.Il, st);
    } else if (gemv) {
      launch_gemv_gate_up<T>(L.gu_w, h, s.Il, s.H, ptr<T>(a.act), st);
      launch_gemv<T>(L.down_w, ptr<T>(a.act), mlp_out, s.H, s.Il, st);
    } else {
      const T* gu_w = prefill_weights(R, L.gu_w, L.gu_q, 2 * s.Il, s.H, 0);
      const T* down_w = prefill_weights(R, L.down_w, L.down_q, s.H, s.Il, 2 * size_t(s.Il) * s.H);
      for (int r0 = 0; r0 < n; r0 += a.mlp_rows) {
        const int rows = std::min(a.mlp_rows, n - r0);
        gemm(R, gu_w, 2 * s.Il, s.H, h + int64_t(r0) * s.H, rows, a.gu.p, Types<T>::cuda);
        launch_silu_mul<T>(ptr<T>(a.gu), rows, s.Il, ptr<T>(a.act), st);
        gemm(R, down_w, s.H, s.Il, ptr<T>(a.act), rows, delta_at(int64_t(r0) * s.H), delta_type);
      }
    }
    if (!peer) all_reduce(R, out, size_t(n) * s.H);
  }
  const int64_t last = int64_t(n - n_logits) * s.H;
  if (peer)
    launch_allreduce_rmsnorm<T>(R.peers_mlp, s.tp, R.rank, step, 2 * s.layers - 1, x, R.final_norm,
                                h, s.H, s.eps, st);
  else
    norm(x + last, true, last, R.final_norm, h + last, n_logits);
  const int vloc = R.v1 - R.v0;
  if (R.lm_head_q.present()) {  // one row at a time: no vocabulary-sized scratch
    for (int i = 0; i < n_logits; ++i)
      launch_qgemv<T>(s.qf, R.lm_head_q, h + last + int64_t(i) * s.H,
                      ptr<float>(a.logits) + int64_t(i) * vloc, vloc, s.H, st);
  } else if (gemv)
    launch_gemv<T>(R.lm_head, h + last, ptr<float>(a.logits), vloc, s.H, st);
  else
    gemm(R, R.lm_head, vloc, s.H, h + last, n_logits, a.logits.p, CUDA_R_32F);
  launch_round<T>(ptr<float>(a.logits), int64_t(n_logits) * vloc,
                  n_logits == 1 ? ptr<PickScratch>(R.pick) : nullptr, st);
}

template <typename T>
void CudaModel<T>::rank_forward(Rank& R, const int32_t* tokens, int n, int start_pos, int n_logits,
                                const Output& out) {
  const Shape& s = s_;
  if (start_pos + n > R.cap)
    throw Error(LMD_ERR_NOMEM, "the KV cache holds " + std::to_string(R.cap) +
                                   " positions on this GPU; position " +
                                   std::to_string(start_pos + n) + " was asked for");
  int32_t* hs = ptr<int32_t>(R.h_small);
  hs[0] = start_pos;
  hs[1] = tokens[0];
  CU_CHECK(cudaMemcpyAsync(R.small.p, hs, 2 * sizeof(int32_t), cudaMemcpyHostToDevice, R.stream));
  const bool decode = n == 1 && n_logits == 1;
  Acts* a = &R.dec;
  if (decode) {
    if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev0, R.stream));
    const int32_t* d_tok = ptr<int32_t>(R.small) + 1;
    if (use_graph_) {
      if (!R.graph_exec) {
        CU_CHECK(cudaStreamBeginCapture(R.stream, cudaStreamCaptureModeThreadLocal));
        try {
          body(R, R.dec, 1, 1, d_tok, gemv_decode_);
        } catch (...) {
          cudaGraph_t g = nullptr;
          cudaStreamEndCapture(R.stream, &g);
          if (g) cudaGraphDestroy(g);
          throw;
        }
        CU_CHECK(cudaStreamEndCapture(R.stream, &R.graph));
        CU_CHECK(cudaGraphInstantiate(&R.graph_exec, R.graph, 0));
      }
      CU_CHECK(cudaGraphLaunch(R.graph_exec, R.stream));
    } else {
      body(R, R.dec, 1, 1, d_tok, gemv_decode_);
    }
  } else {
    CU_CHECK(cudaStreamSynchronize(R.stream));  // buffers may be reallocated below
    size_acts(R.pre, n, n_logits);
    a = &R.pre;
    R.h_tokens.reserve(size_t(n) * sizeof(int32_t));
    std::memcpy(R.h_tokens.p, tokens, size_t(n) * sizeof(int32_t));
    CU_CHECK(cudaMemcpyAsync(a->tokens.p, R.h_tokens.p, size_t(n) * sizeof(int32_t),
                             cudaMemcpyHostToDevice, R.stream));
    if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev0, R.stream));
    body(R, *a, n, n_logits, ptr<int32_t>(a->tokens), false);
  }
  if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev1, R.stream));
  const int vloc = R.v1 - R.v0;
  if (out.picks) {
    // A few bytes cross to the host instead of the logits row: the rank's
    // choice and the watched logits that fall in its slice.
    R.h_pick.reserve(sizeof(Pick) + size_t(out.n_watch) * sizeof(float));
    CU_CHECK(cudaMemcpyAsync(R.h_pick.p, &ptr<PickScratch>(R.pick)->result, sizeof(Pick),
                             cudaMemcpyDeviceToHost, R.stream));
    float* hw = reinterpret_cast<float*>(ptr<Pick>(R.h_pick) + 1);
    for (int w = 0; w < out.n_watch; ++w) {
      const int32_t id = out.watch[w];
      if (id >= R.v0 && id < R.v1)
        CU_CHECK(cudaMemcpyAsync(hw + w, ptr<float>(a->logits) + (id - R.v0), sizeof(float),
                                 cudaMemcpyDeviceToHost, R.stream));
    }
    CU_CHECK(cudaStreamSynchronize(R.stream));
    Pick p = *ptr<Pick>(R.h_pick);
    if (p.index >= 0) p.index += R.v0;
    out.picks[R.rank] = p;
    for (int w = 0; w < out.n_watch; ++w)
      if (out.watch[w] >= R.v0 && out.watch[w] < R.v1) out.watch_logits[w] = hw[w];
  } else {
    const size_t bytes = size_t(n_logits) * vloc * sizeof(float);
    R.h_logits.reserve(bytes);
    CU_CHECK(cudaMemcpyAsync(R.h_logits.p, a->logits.p, bytes, cudaMemcpyDeviceToHost, R.stream));
    CU_CHECK(cudaStreamSynchronize(R.stream));
    const float* src = ptr<float>(R.h_logits);
    for (int i = 0; i < n_logits; ++i)
      std::memcpy(out.logits + int64_t(i) * s.V + R.v0, src + int64_t(i) * vloc,
                  size_t(vloc) * sizeof(float));
  }
  if (R.rank == 0) {
    float ms = 0.f;
    CU_CHECK(cudaEventElapsedTime(&ms, R.ev0, R.ev1));
    last_ns_ = int64_t(double(ms) * 1e6);
  }
}

template <typename T>
void CudaModel<T>::forward(const int32_t* tokens, int n, int start_pos, int n_logits,
                           const Output& out) {
  if (n < 1 || n_logits < 1 || n_logits > n || start_pos < 0)
    throw Error(LMD_ERR_INVALID, "forward: bad token count or position");
  if (out.picks && n_logits != 1)
    throw Error(LMD_ERR_INVALID, "forward: the greedy choice is made for one position only");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= s_.V)
      throw Error(LMD_ERR_INVALID,
                  "forward: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
  for (int w = 0; w < out.n_watch; ++w)
    if (out.watch[w] < 0 || out.watch[w] >= s_.V)
      throw Error(LMD_ERR_INVALID,
                  "forward: watched id " + std::to_string(out.watch[w]) + " is outside the vocabulary");
  last_ns_ = -1;
  workers_->run([&](int r) { rank_forward(*ranks_[r], tokens, n, start_pos, n_logits, out); });
}

// ---------------------------------------------------------------------------
// The plugin's C entry points.


Shape make_shape(const lmdref_cuda_model& m, int tp, const std::string& weights, bool q_head) {
  Shape s;
  s.H = int(m.hidden);
  s.I = int(m.intermediate);
  s.V = int(m.vocab);
  s.layers = int(m.layers);
  s.heads = int(m.heads);
  s.kv_heads = int(m.kv_heads);
  s.hd = int(m.head_dim);
  s.tp = tp;
  s.tied = m.tied != 0;
  s.eps = m.rms_eps;
  s.theta = m.rope_theta;
  s.max_seq_len = m.max_seq_len;
  auto unsupported = [](const std::string& why) {
    throw Error(LMD_ERR_UNSUPPORTED, "the CUDA backend cannot run this model: " + why);
  };
  if (!attention_supports(s.hd))
    unsupported("head_dim " + std::to_string(s.hd) + " (kernels exist for 16, 32, 64 and 128)");
  if (s.heads % tp || s.kv_heads % tp || s.I % tp)
    unsupported("heads (" + std::to_string(s.heads) + "), kv heads (" + std::to_string(s.kv_heads) +
                ") and intermediate size (" + std::to_string(s.I) + ") must divide by tp=" +
                std::to_string(tp));
  if (s.heads / s.kv_heads > 8) unsupported("more than 8 query heads per kv head");
  s.qh = s.heads / tp;
  s.kvh = s.kv_heads / tp;
  s.Ql = s.qh * s.hd;
  s.KVl = s.kvh * s.hd;
  s.QKVl = s.Ql + 2 * s.KVl;
  s.Il = s.I / tp;
  if (s.H % 8 || s.Il % 8)
    unsupported("hidden size and intermediate size per GPU must be multiples of 8");
  if (!weights.empty()) {
    if (weights != "int8" && weights != "fp8")
      throw Error(LMD_ERR_INVALID, "weights \"" + weights + "\": the CUDA backend quantizes to int8 or fp8");
    s.quant = true;
    s.qf = weights == "int8" ? QFormat::Int8 : QFormat::Fp8;
    s.q_head = q_head;
    if (s.H % 16 || s.Il % 16 || s.Ql % 16)
      unsupported(weights + " weights need the hidden size, the intermediate size per GPU and the "
                            "attention width per GPU in multiples of 16");
  }
  return s;
}

struct Handle {
  std::unique_ptr<Model> model;
};

void* plugin_create(const lmdref_cuda_model* m, const lmdref_cuda_weights* w,
                    const lmdref_cuda_options* o, int32_t* code, char* err, size_t cap) {
  Handle* h = nullptr;
  const int32_t rc = lmdrive::guarded(err, cap, [&] {
    if (!m || !w || !o || !o->devices || o->n_devices < 1)
      throw Error(LMD_ERR_INVALID, "CUDA plugin: bad create arguments");
    const std::string dtype = o->dtype ? o->dtype : "fp16";
    std::vector<int> devices(o->devices, o->devices + o->n_devices);
    const Shape s = make_shape(*m, int(devices.size()), o->weights ? o->weights : "",
                               o->quantize_lm_head != 0);
    std::unique_ptr<Handle> hh(new Handle);
    if (dtype == "fp16")
      hh->model.reset(new CudaModel<__half>(s, w, devices));
    else if (dtype == "bf16")
      hh->model.reset(new CudaModel<__nv_bfloat16>(s, w, devices));
    else
      throw Error(LMD_ERR_UNSUPPORTED, "dtype \"" + dtype + "\": the CUDA backend runs fp16 or bf16");
    h = hh.release();
  });
  if (code) *code = rc;
  return h;
}

// True (and *cancelled set) when the caller's cancel flag is already up.
bool cancelled_before(const void* cancel, int32_t* cancelled) {
  const auto* flag = static_cast<const std::atomic<bool>*>(cancel);
  const bool up = flag && flag->load(std::memory_order_relaxed);
  if (cancelled) *cancelled = up ? 1 : 0;
  return up;
}

int32_t plugin_forward(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                       int32_t n_logits, float* logits, const void* cancel, int32_t* cancelled,
                       char* err, size_t cap) {
  if (cancelled_before(cancel, cancelled)) return 0;
  return lmdrive::guarded(err, cap, [&] {
    Output out;
    out.logits = logits;
    static_cast<Handle*>(h)->model->forward(tokens, n, start_pos, n_logits, out);
  });
}

int32_t plugin_forward_greedy(void* h, const int32_t* tokens, int32_t n, int32_t start_pos,
                              const int32_t* watch, int32_t n_watch, float* watch_logits,
                              lmdref_cuda_choice* choice, const void* cancel, int32_t* cancelled,
                              char* err, size_t cap) {
  if (cancelled_before(cancel, cancelled)) return 0;
  return lmdrive::guarded(err, cap, [&] {
    if (!choice || n_watch < 0 || (n_watch > 0 && (!watch || !watch_logits)))
      throw Error(LMD_ERR_INVALID, "CUDA plugin: bad forward_greedy arguments");
    Model& m = *static_cast<Handle*>(h)->model;
    std::vector<Pick> picks(m.tp());
    Output out;
    out.picks = picks.data();
    out.watch = watch;
    out.n_watch = n_watch;
    out.watch_logits = watch_logits;
    m.forward(tokens, n, start_pos, 1, out);
    // Ranks hold consecutive vocabulary slices: on equal maxima the lower
    // rank has the lower id, so "strictly greater" keeps the first index.
    const Pick* best = nullptr;
    for (const Pick& p : picks)
      if (p.index >= 0 && (!best || p.max > best->max)) best = &p;
    if (!best) throw Error(LMD_ERR_ENGINE, "every logit of this step is -inf or NaN");
    double sum = 0;
    for (const Pick& p : picks)
      if (p.index >= 0) sum += double(p.sum) * std::exp(double(p.max) - double(best->max));
    choice->id = best->index;
    choice->logit = best->max;
    choice->log_sum_exp = double(best->max) + std::log(sum);
  });
}

int64_t plugin_last_device_ns(void* h) { return static_cast<Handle*>(h)->model->last_device_ns(); }
const char* plugin_dtype(void* h) { return static_cast<Handle*>(h)->model->dtype(); }
void plugin_destroy(void* h) { delete static_cast<Handle*>(h); }

const lmdref_cuda_api kApi = {
    sizeof(lmdref_cuda_api), LMDREF_CUDA_PLUGIN_VERSION, plugin_create,  plugin_forward,
    plugin_last_device_ns,   plugin_dtype,               plugin_destroy, plugin_forward_greedy,
};

}  // namespace
}  // namespace lmdcu

extern "C" __attribute__((visibility("default"))) const lmdref_cuda_api* lmdref_cuda_get_api(void) {
  return &lmdcu::kApi;
}
