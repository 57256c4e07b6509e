// Creating and destroying the model's ranks: devices, streams, handles,
// communicators, device buffers, the KV cache and peer access.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "model.h"

namespace lmdcu {

Shape make_shape(const lmdref_cuda_model& m, int tp, const std::string& weights,
                 bool quantize_lm_head) {
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
      throw Error(LMD_ERR_INVALID,
                  "weights \"" + weights + "\": the CUDA backend quantizes to int8 or fp8");
    s.quant = true;
    s.qf = weights == "int8" ? QFormat::Int8 : QFormat::Fp8;
    s.q_head = quantize_lm_head;
    if (s.H % 16 || s.Il % 16 || s.Ql % 16)
      unsupported(weights + " weights need the hidden size, the intermediate size per GPU and "
                            "the attention width per GPU in multiples of 16");
  }
  return s;
}

std::unique_ptr<Model> make_model(const Shape& s, const lmdref_cuda_weights* w,
                                  std::vector<int> devices, const std::string& dtype,
                                  const Options& opt, int max_sequences) {
  if (dtype == "fp16")
    return std::make_unique<CudaModel<__half>>(s, w, std::move(devices), opt, max_sequences);
  if (dtype == "bf16")
    return std::make_unique<CudaModel<__nv_bfloat16>>(s, w, std::move(devices), opt, max_sequences);
  throw Error(LMD_ERR_UNSUPPORTED, "dtype \"" + dtype + "\": the CUDA backend runs fp16 or bf16");
}

template <typename T>
CudaModel<T>::CudaModel(const Shape& s, const lmdref_cuda_weights* w, std::vector<int> devices,
                        const Options& opt, int max_sequences)
    : s_(s), opt_(opt), devices_(std::move(devices)), ranges_(size_t(std::max(1, max_sequences))) {
  dtype_ = Types<T>::name();
  if (s_.quant) dtype_ = std::string(s_.qf == QFormat::Int8 ? "int8/" : "fp8/") + dtype_;
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
  cap_ = ranks_[0]->cap;
  for (const auto& R : ranks_) cap_ = std::min(cap_, R->cap);
  if (tp > 1 && tp <= kMaxPeers && opt_.peer_allreduce) enable_peer_allreduce();
}

// First fit: the lowest base where `positions` (at most the cache's) fit
// between the ranges in use.
template <typename T>
int CudaModel<T>::open_sequence(int positions) {
  if (positions < 1) throw Error(LMD_ERR_INVALID, "open_sequence: no positions");
  const int len = std::min(positions, cap_);
  int slot = -1;
  std::vector<std::pair<int, int>> used;  // (base, end)
  for (size_t i = 0; i < ranges_.size(); ++i) {
    if (ranges_[i].used)
      used.emplace_back(ranges_[i].base, ranges_[i].base + ranges_[i].len);
    else if (slot < 0)
      slot = int(i);
  }
  if (slot < 0) return -1;
  std::sort(used.begin(), used.end());
  int base = 0;
  for (const auto& u : used) {
    if (u.first - base >= len) break;
    base = std::max(base, u.second);
  }
  if (base + len > cap_) return -1;
  ranges_[slot] = KvRange{true, base, len};
  drop_ahead();
  return slot;
}

template <typename T>
void CudaModel<T>::close_sequence(int slot) {
  if (slot >= 0 && size_t(slot) < ranges_.size()) ranges_[slot] = KvRange{};
  drop_ahead();
}

// Decode all-reduces through peer access (one fused kernel with the residual
// add and RMSNorm) where every pair of GPUs can reach each other; otherwise,
// and with LMDREF_CUDA_AR=nccl, NCCL. Prefill always uses NCCL.
template <typename T>
void CudaModel<T>::enable_peer_allreduce() {
  const int tp = s_.tp;
  std::vector<int> reach(tp, 1);
  workers_->run([&](int r) {
    for (int p = 0; p < tp; ++p) {
      int ok = 0;
      if (p != r && (cudaDeviceCanAccessPeer(&ok, devices_[r], devices_[p]) != cudaSuccess || !ok))
        reach[r] = 0;
    }
  });
  if (!std::all_of(reach.begin(), reach.end(), [](int v) { return v == 1; })) return;
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
    return;
  }
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
      if (R.side) cudaStreamSynchronize(R.side);
      for (cudaEvent_t e : {R.deq_ready[0], R.deq_ready[1], R.deq_free[0], R.deq_free[1]})
        if (e) cudaEventDestroy(e);
      if (R.side) cudaStreamDestroy(R.side);
      for (auto& pair : R.step_ev)
        for (cudaEvent_t e : pair)
          if (e) cudaEventDestroy(e);
      if (R.copied) cudaEventDestroy(R.copied);
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
  // Quantized weights: the prefill dequantizes the next layer on R.side
  // under this layer's GEMMs; the model's own kernels go first wherever both
  // streams have blocks waiting, so the copies fill the gaps instead of
  // delaying the GEMMs.
  int low_prio = 0, high_prio = 0;
  CU_CHECK(cudaDeviceGetStreamPriorityRange(&low_prio, &high_prio));
  CU_CHECK(cudaStreamCreateWithPriority(&R.stream, cudaStreamNonBlocking,
                                        s.quant ? high_prio : low_prio));
  CU_CHECK(cudaEventCreate(&R.ev0));
  CU_CHECK(cudaEventCreate(&R.ev1));
  for (auto& pair : R.step_ev)
    for (cudaEvent_t& e : pair) CU_CHECK(cudaEventCreate(&e));
  CU_CHECK(cudaEventCreateWithFlags(&R.copied, cudaEventDisableTiming));
  BLAS_CHECK(cublasCreate(&R.blas));
  BLAS_CHECK(cublasSetStream(R.blas, R.stream));
  R.blas_ws.alloc(32u << 20);
  BLAS_CHECK(cublasSetWorkspace(R.blas, R.blas_ws.p, R.blas_ws.bytes));
  cudaDeviceProp prop;
  CU_CHECK(cudaGetDeviceProperties(&prop, R.device));
  R.sms = prop.multiProcessorCount;
  if (s.quant && s.qf == QFormat::Fp8 && prop.major < 9)
    throw Error(LMD_ERR_UNSUPPORTED, "fp8 weights need an sm_90 GPU (H100/H200): " +
                                         std::string(prop.name) + " is sm_" +
                                         std::to_string(prop.major * 10 + prop.minor) +
                                         "; use --precision int8");
  R.kernels = Launch{R.stream, opt_.early_start && prop.major >= 9, R.sms};
  R.sm90_prefill = opt_.wgmma_prefill && prefill_sm90_ready(s.hd);
  if (s.quant) {
    CU_CHECK(cudaStreamCreateWithPriority(&R.side, cudaStreamNonBlocking, low_prio));
    for (cudaEvent_t* e : {&R.deq_ready[0], &R.deq_ready[1], &R.deq_free[0], &R.deq_free[1]})
      CU_CHECK(cudaEventCreateWithFlags(e, cudaEventDisableTiming));
  }

  const int per = int(ceil_div(s.V, s.tp));
  R.v0 = std::min(s.V, r * per);
  R.v1 = std::min(s.V, R.v0 + per);
  const int vloc = R.v1 - R.v0;
  load_rank_weights<T>(s, r, R.v0, R.v1, feed, R.stream, R.w);

  // RoPE inverse frequencies, computed as the CPU backend does.
  std::vector<float> inv(s.hd / 2);
  for (int i = 0; i < s.hd / 2; ++i) {
    const float e = float(2 * i) / float(s.hd);
    inv[i] = 1.0f / float(std::pow(double(float(s.theta)), double(e)));
  }
  R.inv_freq.alloc(inv.size() * sizeof(float));
  CU_CHECK(cudaMemcpy(R.inv_freq.p, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));

  R.small.alloc(4 * sizeof(int32_t));  // position, token, cache base
  CU_CHECK(cudaMemset(R.small.p, 0, R.small.bytes));
  R.h_small.reserve(4 * sizeof(int32_t));
  // Decode attention: about two blocks per SM over all kv heads.
  R.splits.parts = decode_parts(R.sms, s.kvh);
  R.part_o.alloc(size_t(s.qh) * R.splits.parts * s.hd * sizeof(float));
  R.part_ml.alloc(size_t(s.qh) * R.splits.parts * 2 * sizeof(float));
  CU_CHECK(cudaMemset(R.part_o.p, 0, R.part_o.bytes));
  CU_CHECK(cudaMemset(R.part_ml.p, 0, R.part_ml.bytes));
  R.splits.part_o = ptr<float>(R.part_o);
  R.splits.part_ml = ptr<float>(R.part_ml);
  if (!opt_.separate_combine) {
    R.counters.alloc(size_t(s.kvh) * sizeof(unsigned));
    CU_CHECK(cudaMemset(R.counters.p, 0, R.counters.bytes));
    R.splits.counters = ptr<unsigned>(R.counters);
  }
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
  // A batched step: a greedy reduction per sequence, and the decode
  // attention's partials of every decoding sequence (count × parts stays
  // below 2·SMs/kv heads + count, decode_batch_parts).
  const size_t seqs = ranges_.size();
  R.picks.alloc(seqs * sizeof(PickScratch));
  CU_CHECK(cudaMemset(R.picks.p, 0, R.picks.bytes));
  R.h_picks.reserve(seqs * sizeof(PickScratch));
  const size_t units = size_t(ceil_div(2 * R.sms, s.kvh)) + seqs;
  R.part_ob.alloc(units * s.qh * s.hd * sizeof(float));
  R.part_mlb.alloc(units * s.qh * 2 * sizeof(float));

  // The KV cache: max_seq_len positions for every sequence when they fit,
  // else what fits (the sequences share it, each in a range of its own).
  const uint64_t per_pos = uint64_t(s.layers) * 2 * s.KVl * sizeof(T);
  size_t free_b = 0, total_b = 0;
  CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const uint64_t reserve = std::max<uint64_t>(uint64_t(3) << 30, total_b / 16);
  const uint64_t fit = std::min<uint64_t>(free_b > reserve ? (free_b - reserve) / per_pos : 0, INT32_MAX);
  const uint64_t want = uint64_t(std::max<uint32_t>(s.max_seq_len, 2)) * seqs;
  R.cap = int(std::min<uint64_t>(want, fit));
  if (R.cap < 2) {
    char gb[32];
    std::snprintf(gb, sizeof gb, "%.1f GB", double(R.w.bytes) / 1e9);
    throw Error(LMD_ERR_NOMEM,
                std::string("no GPU memory left for the KV cache after the weights (") + gb + ")");
  }
  if (uint64_t(R.cap) < std::max<uint32_t>(s.max_seq_len, 2) && r == 0)
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
    a.mlp_rows = std::min(rows, kMlpRows);
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
    a.hl.alloc(size_t(logit_rows) * s.H * sizeof(T));
  }
}

template class CudaModel<__half>;
template class CudaModel<__nv_bfloat16>;

}  // namespace lmdcu
