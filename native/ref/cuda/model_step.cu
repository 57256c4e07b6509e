// One forward of the model: the kernels of a step (prefill over n tokens, or
// one decode token through the captured CUDA graph) and what crosses back to
// the host.
#include <cstring>

#include "model.h"

namespace lmdcu {

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
// gemv: one token through the matrix-vector kernels (decode), else cuBLAS.
// One decode token on one GPU through the streaming matrix-vector kernels:
// each RMSNorm is computed by the kernel that consumes it, each residual add
// by the projection that produces it, so a layer is five or six kernels:
// q|k|v (+ norm, bias, RoPE, cache), attention (+ combine), o (+ residual),
// gate|up (+ norm, SwiGLU), down (+ residual). The same bits as step().
template <typename T>
QkvTarget<T> CudaModel<T>::qkv_target(const Rank& R, const Acts& a, int l) const {
  const uint64_t layer_kv = uint64_t(s_.KVl) * R.cap;
  QkvTarget<T> t;
  t.bias = R.w.layers[l].qkv_bias;
  t.inv_freq = ptr<float>(R.inv_freq);
  t.q_heads = s_.qh;
  t.kv_heads = s_.kvh;
  t.head_dim = s_.hd;
  t.q_out = ptr<T>(a.q);
  t.k_cache = R.kcache + l * layer_kv;
  t.v_cache = R.vcache + l * layer_kv;
  t.cap = R.cap;
  return t;
}

template <typename T>
AttentionArgs<T> CudaModel<T>::attention_args(const Rank& R, const Acts& a, int l) const {
  const uint64_t layer_kv = uint64_t(s_.KVl) * R.cap;
  AttentionArgs<T> att;
  att.q = ptr<T>(a.q);
  att.k_cache = R.kcache + l * layer_kv;
  att.v_cache = R.vcache + l * layer_kv;
  att.cap = R.cap;
  att.q_heads = s_.qh;
  att.kv_heads = s_.kvh;
  att.head_dim = s_.hd;
  att.out = ptr<T>(a.attn);
  return att;
}

template <typename T>
void CudaModel<T>::decode_step_stream(Rank& R, Acts& a, const int32_t* d_tokens) {
  const Shape& s = s_;
  const Launch& st = R.kernels;
  const int32_t* state = ptr<int32_t>(R.small);
  T* x = ptr<T>(a.x);
  launch_embed<T>(d_tokens, 1, R.w.embed, s.H, x, st);
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights<T>& L = R.w.layers[l];
    QkvTarget<T> qkv = qkv_target(R, a, l);
    qkv.state = state;
    AttentionArgs<T> att = attention_args(R, a, l);
    att.state = state;
    att.n = 1;
    stream_gemv_qkv_rope<T>(L.qkv, GemvInput<T>{x, L.in_norm, s.eps}, qkv, st);
    launch_decode_attention<T>(att, R.splits, st);
    stream_gemv_residual<T>(L.o, GemvInput<T>{ptr<T>(a.attn), nullptr, 0.f}, x, st);
    stream_gemv_gate_up<T>(L.gate_up, GemvInput<T>{x, L.post_norm, s.eps}, ptr<T>(a.act), st);
    stream_gemv_residual<T>(L.down, GemvInput<T>{ptr<T>(a.act), nullptr, 0.f}, x, st);
  }
  stream_gemv<T>(R.w.lm_head, GemvInput<T>{x, R.w.final_norm, s.eps}, ptr<float>(a.logits), st);
  launch_round<T>(ptr<float>(a.logits), R.v1 - R.v0, ptr<PickScratch>(R.pick), st);
}

template <typename T>
void CudaModel<T>::step(Rank& R, Acts& a, int n, int n_logits, const int32_t* d_tokens, bool gemv) {
  const Shape& s = s_;
  // Quantized projections take the fused path too (stream_gemv* branch to
  // quant.cu's kernels, which fuse the same RMSNorm and residual add).
  if (gemv && !opt_.warp_gemv && s.tp == 1) return decode_step_stream(R, a, d_tokens);
  const Launch& st = R.kernels;
  const int32_t* state = ptr<int32_t>(R.small);
  T* x = ptr<T>(a.x);
  T* h = ptr<T>(a.h);
  float* out = ptr<float>(a.out);
  // Peer all-reduce (decode with the fused matrix-vector kernels): the
  // attention partials go to dec.out, the MLP partials to out2, alternately,
  // so a rank never rewrites a buffer that a peer may still be reading.
  const bool peer = gemv && peer_ar_;
  const unsigned long long* counter = ptr<unsigned long long>(R.step);
  float* mlp_out = peer ? ptr<float>(R.out2) : out;
  // On one GPU the prefill's o and down projections leave their outputs in T
  // (cuBLAS rounds once, as a framework's 16-bit Linear does): half the bytes
  // of the fp32 partial sums that an all-reduce needs.
  const bool t_delta = !gemv && s.tp == 1;
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
  // Quantized prefill: layer l's matrices are dequantized into scratch half
  // l % 2 on R.side while layer l - 1 computes: memory-bound copies under
  // compute-bound GEMMs. (One token, or a decode step captured in a graph,
  // dequantizes in line on R.stream instead.)
  const bool overlap = s.quant && !gemv && n > 1;
  auto in_half = [&](const Linear<T>& W, int half) { return R.w.in_half(W, half); };
  auto prefetch = [&](int l) {
    const int half = l % 2;
    const LayerWeights<T>& L = R.w.layers[l];
    const Launch side{R.side, false};
    CU_CHECK(cudaStreamWaitEvent(R.side, R.deq_free[half], 0));
    for (const Linear<T>* W : {&L.qkv, &L.o, &L.gate_up, &L.down})
      linear_prepare<T>(in_half(*W, half), side);
    CU_CHECK(cudaEventRecord(R.deq_ready[half], R.side));
  };
  if (overlap) {
    CU_CHECK(cudaEventRecord(R.deq_free[0], R.stream));
    CU_CHECK(cudaEventRecord(R.deq_free[1], R.stream));
    prefetch(0);
  }
  if (peer) launch_step(ptr<unsigned long long>(R.step), st);
  launch_embed<T>(d_tokens, n, R.w.embed, s.H, x, st);
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights<T>& Lw = R.w.layers[l];
    if (overlap && l + 1 < s.layers) prefetch(l + 1);
    LayerWeights<T> L = Lw;
    if (overlap) {
      L.qkv = in_half(Lw.qkv, l % 2);
      L.o = in_half(Lw.o, l % 2);
      L.gate_up = in_half(Lw.gate_up, l % 2);
      L.down = in_half(Lw.down, l % 2);
    }
    // Dequantized in line (no overlap), or waited for before the first GEMM.
    auto prepare = [&](const Linear<T>& W) {
      if (!overlap) linear_prepare<T>(W, st);
    };
    QkvTarget<T> qkv = qkv_target(R, a, l);
    qkv.state = state;
    AttentionArgs<T> att = attention_args(R, a, l);
    att.state = state;
    att.n = n;

    // x → RMSNorm → q|k|v (+ bias, RoPE, cache) → attention → o
    if (peer && l > 0)
      launch_allreduce_rmsnorm<T>(R.peers_mlp, s.tp, R.rank, counter, 2 * l - 1, x, L.in_norm, h,
                                  s.H, s.eps, st);
    else
      norm(x, l > 0, 0, L.in_norm, h, n);
    if (gemv) {
      linear_gemv_qkv_rope<T>(L.qkv, h, qkv, st);
    } else {
      prepare(L.qkv);
      if (overlap) CU_CHECK(cudaStreamWaitEvent(R.stream, R.deq_ready[l % 2], 0));
      linear_gemm<T>(R.blas, L.qkv, h, n, a.qkv.p, CUDA_R_32F);
      launch_rope_qkv<T>(ptr<float>(a.qkv), n, qkv, st);
    }
    att.host_start = R.pos;
    att.host_base = R.base;
    if (n == 1)
      launch_decode_attention<T>(att, R.splits, st);
    else if (R.sm90_prefill)
      launch_prefill_attention_sm90<T>(att, st);
    else
      launch_prefill_attention<T>(att, st);
    if (gemv)
      linear_gemv<T>(L.o, ptr<T>(a.attn), out, st);
    else {
      prepare(L.o);
      linear_gemm<T>(R.blas, L.o, ptr<T>(a.attn), n, out, delta_type);
    }

    // x += all-reduce(o) → RMSNorm → gate|up → SwiGLU → down
    if (peer) {
      launch_allreduce_rmsnorm<T>(R.peers_attn, s.tp, R.rank, counter, 2 * l, x, L.post_norm, h,
                                  s.H, s.eps, st);
    } else {
      all_reduce(R, out, size_t(n) * s.H);
      norm(x, true, 0, L.post_norm, h, n);
    }
    if (gemv) {
      linear_gemv_gate_up<T>(L.gate_up, h, ptr<T>(a.act), st);
      linear_gemv<T>(L.down, ptr<T>(a.act), mlp_out, st);
    } else {
      prepare(L.gate_up);
      prepare(L.down);
      const int passes = int(ceil_div(n, a.mlp_rows));
      const int per = int(ceil_div(n, passes));
      for (int r0 = 0; r0 < n; r0 += per) {
        const int rows = std::min(per, n - r0);
        linear_gemm<T>(R.blas, L.gate_up, h + int64_t(r0) * s.H, rows, a.gu.p, Types<T>::cuda);
        launch_silu_mul<T>(ptr<T>(a.gu), rows, s.Il, ptr<T>(a.act), st);
        linear_gemm<T>(R.blas, L.down, ptr<T>(a.act), rows, delta_at(int64_t(r0) * s.H),
                       delta_type);
      }
    }
    if (overlap) CU_CHECK(cudaEventRecord(R.deq_free[l % 2], R.stream));
    if (!peer) all_reduce(R, out, size_t(n) * s.H);
  }

  // x += all-reduce(down) → final RMSNorm → lm_head → logits (rounded to T)
  const int64_t last = int64_t(n - n_logits) * s.H;
  if (peer)
    launch_allreduce_rmsnorm<T>(R.peers_mlp, s.tp, R.rank, counter, 2 * s.layers - 1, x,
                                R.w.final_norm, h, s.H, s.eps, st);
  else
    norm(x + last, true, last, R.w.final_norm, h + last, n_logits);
  const int vloc = R.v1 - R.v0;
  if (gemv)
    linear_gemv<T>(R.w.lm_head, h + last, ptr<float>(a.logits), st);
  else if (R.w.lm_head.quantized())  // no vocabulary-sized scratch: a row at a time
    for (int i = 0; i < n_logits; ++i)
      linear_gemv<T>(R.w.lm_head, h + last + int64_t(i) * s.H,
                     ptr<float>(a.logits) + int64_t(i) * vloc, st);
  else
    linear_gemm<T>(R.blas, R.w.lm_head, h + last, n_logits, a.logits.p, CUDA_R_32F);
  launch_round<T>(ptr<float>(a.logits), int64_t(n_logits) * vloc,
                  n_logits == 1 ? ptr<PickScratch>(R.pick) : nullptr, st);
}

// One decode token: the step's kernels, captured into a CUDA graph at the
// first call and replayed after (LMDREF_CUDA_GRAPH=0: launched one by one).
template <typename T>
void CudaModel<T>::run_decode_step(Rank& R) {
  const int32_t* d_tok = ptr<int32_t>(R.small) + 1;
  if (!opt_.graph) {
    step(R, R.dec, 1, 1, d_tok, opt_.gemv_decode);
    return;
  }
  if (!R.graph_exec) {
    CU_CHECK(cudaStreamBeginCapture(R.stream, cudaStreamCaptureModeThreadLocal));
    try {
      step(R, R.dec, 1, 1, d_tok, opt_.gemv_decode);
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
}

// Queues the copies of what a greedy step hands back: the rank's choice
// and the watched logits in its slice (a few bytes instead of the row).
template <typename T>
void CudaModel<T>::enqueue_hand_back(Rank& R, const Acts& a, const Output& out) {
  R.h_pick.reserve(sizeof(Pick) + size_t(out.n_watch) * sizeof(float));
  CU_CHECK(cudaMemcpyAsync(R.h_pick.p, &ptr<PickScratch>(R.pick)->result, sizeof(Pick),
                           cudaMemcpyDeviceToHost, R.stream));
  float* hw = reinterpret_cast<float*>(ptr<Pick>(R.h_pick) + 1);
  for (int w = 0; w < out.n_watch; ++w) {
    const int32_t id = out.watch[w];
    if (id >= R.v0 && id < R.v1)
      CU_CHECK(cudaMemcpyAsync(hw + w, ptr<float>(a.logits) + (id - R.v0), sizeof(float),
                               cudaMemcpyDeviceToHost, R.stream));
  }
}

// After those copies are done: the choice (global index) and watched logits.
template <typename T>
void CudaModel<T>::finish_hand_back(Rank& R, const Output& out) {
  Pick p = *ptr<Pick>(R.h_pick);
  if (p.index >= 0) p.index += R.v0;
  out.picks[R.rank] = p;
  const float* hw = reinterpret_cast<const float*>(ptr<Pick>(R.h_pick) + 1);
  for (int w = 0; w < out.n_watch; ++w)
    if (out.watch[w] >= R.v0 && out.watch[w] < R.v1) out.watch_logits[w] = hw[w];
}

// Copies what the forward hands back from the device: the rank's greedy
// choice and the watched logits in its slice, or its logits slice.
template <typename T>
void CudaModel<T>::hand_back(Rank& R, const Acts& a, int n_logits, const Output& out) {
  const int vloc = R.v1 - R.v0;
  if (out.picks) {
    enqueue_hand_back(R, a, out);
    CU_CHECK(cudaStreamSynchronize(R.stream));
    finish_hand_back(R, out);
  } else {
    const size_t bytes = size_t(n_logits) * vloc * sizeof(float);
    R.h_logits.reserve(bytes);
    CU_CHECK(cudaMemcpyAsync(R.h_logits.p, a.logits.p, bytes, cudaMemcpyDeviceToHost, R.stream));
    CU_CHECK(cudaStreamSynchronize(R.stream));
    const float* src = ptr<float>(R.h_logits);
    for (int i = 0; i < n_logits; ++i)
      std::memcpy(out.logits + int64_t(i) * s_.V + R.v0, src + int64_t(i) * vloc,
                  size_t(vloc) * sizeof(float));
  }
}

// A greedy decode step on one GPU with the next one queued ahead: if the
// step asked for was queued by the previous call (same position, and the
// token is the one the GPU chose), it is already running; otherwise it is
// launched now. Then its copies are queued, and behind them the next step
// (the position after, the token this step chooses, set on the device), so
// that the GPU starts it while the host hands this token over and comes
// back. A queued step that is not asked for is harmless: every later step
// rewrites the cache position it wrote before reading it, in stream order
// (the step queued ahead stays inside its sequence's range of the cache,
// positions [0, len) at base; a hit needs the same base, and a batched step
// or a sequence's open or close drops what was queued).
template <typename T>
void CudaModel<T>::decode_ahead(Rank& R, const int32_t* tokens, int start_pos, int base, int len,
                                const Output& out) {
  const bool hit = R.ahead.queued && R.ahead.base == base && R.ahead.pos == start_pos &&
                   R.ahead.token == tokens[0];
  int slot = R.ahead.slot;
  R.ahead.queued = false;
  if (!hit) {
    slot ^= 1;
    // The staging words fed no copy since the last call's copies were done;
    // a step queued ahead reads the device's words before this copy lands.
    int32_t* hs = ptr<int32_t>(R.h_small);
    hs[0] = start_pos;
    hs[1] = tokens[0];
    hs[2] = base;
    CU_CHECK(cudaMemcpyAsync(R.small.p, hs, 3 * sizeof(int32_t), cudaMemcpyHostToDevice, R.stream));
    CU_CHECK(cudaEventRecord(R.step_ev[slot][0], R.stream));
    run_decode_step(R);
    CU_CHECK(cudaEventRecord(R.step_ev[slot][1], R.stream));
  }
  enqueue_hand_back(R, R.dec, out);
  CU_CHECK(cudaEventRecord(R.copied, R.stream));
  const int next = start_pos + 1;
  if (next < len) {
    const int ns = slot ^ 1;
    launch_advance(ptr<int32_t>(R.small), next, ptr<PickScratch>(R.pick), R.kernels);
    CU_CHECK(cudaEventRecord(R.step_ev[ns][0], R.stream));
    run_decode_step(R);
    CU_CHECK(cudaEventRecord(R.step_ev[ns][1], R.stream));
    R.ahead.queued = true;
    R.ahead.pos = next;
    R.ahead.base = base;
    R.ahead.slot = ns;
  }
  CU_CHECK(cudaEventSynchronize(R.copied));
  finish_hand_back(R, out);
  R.ahead.token = out.picks[R.rank].index;
  if (!R.ahead.queued) R.ahead.slot = slot;
  float ms = 0.f;
  CU_CHECK(cudaEventElapsedTime(&ms, R.step_ev[slot][0], R.step_ev[slot][1]));
  last_ns_ = int64_t(double(ms) * 1e6);
}


// One sequence whose positions [0, len) start at cache index base.
template <typename T>
void CudaModel<T>::rank_forward(Rank& R, const int32_t* tokens, int n, int start_pos, int base,
                                int len, int n_logits, const Output& out) {
  if (base + start_pos + n > R.cap)
    throw Error(LMD_ERR_NOMEM, "the KV cache holds " + std::to_string(R.cap) +
                                   " positions on this GPU; position " +
                                   std::to_string(start_pos + n) + " was asked for");
  const bool decode = n == 1 && n_logits == 1;
  R.pos = start_pos;
  R.base = base;
  if (decode && out.picks && ahead_enabled())
    return decode_ahead(R, tokens, start_pos, base, len, out);
  R.ahead.queued = false;  // one queued ahead and not used: stream order keeps it harmless
  int32_t* hs = ptr<int32_t>(R.h_small);
  hs[0] = start_pos;
  hs[1] = tokens[0];
  hs[2] = base;
  CU_CHECK(cudaMemcpyAsync(R.small.p, hs, 3 * sizeof(int32_t), cudaMemcpyHostToDevice, R.stream));
  Acts* a = &R.dec;
  if (decode) {
    if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev0, R.stream));
    run_decode_step(R);
  } else {
    CU_CHECK(cudaStreamSynchronize(R.stream));  // buffers may be reallocated below
    size_acts(R.pre, n, n_logits);
    a = &R.pre;
    R.h_tokens.reserve(size_t(n) * sizeof(int32_t));
    std::memcpy(R.h_tokens.p, tokens, size_t(n) * sizeof(int32_t));
    CU_CHECK(cudaMemcpyAsync(a->tokens.p, R.h_tokens.p, size_t(n) * sizeof(int32_t),
                             cudaMemcpyHostToDevice, R.stream));
    if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev0, R.stream));
    step(R, *a, n, n_logits, ptr<int32_t>(a->tokens), false);
  }
  if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev1, R.stream));
  hand_back(R, *a, n_logits, out);
  if (R.rank == 0) {
    float ms = 0.f;
    CU_CHECK(cudaEventElapsedTime(&ms, R.ev0, R.ev1));
    last_ns_ = int64_t(double(ms) * 1e6);
  }
}

template <typename T>
void CudaModel<T>::check_tokens(const int32_t* tokens, int n) const {
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= s_.V)
      throw Error(LMD_ERR_INVALID,
                  "forward: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
}

template <typename T>
void CudaModel<T>::forward(const int32_t* tokens, int n, int start_pos, int n_logits,
                           const Output& out) {
  if (n < 1 || n_logits < 1 || n_logits > n || start_pos < 0)
    throw Error(LMD_ERR_INVALID, "forward: bad token count or position");
  if (out.picks && n_logits != 1)
    throw Error(LMD_ERR_INVALID, "forward: the greedy choice is made for one position only");
  for (const KvRange& r : ranges_)
    if (r.used) throw Error(LMD_ERR_STATE, "forward: sequences are open; their steps own the cache");
  check_tokens(tokens, n);
  for (int w = 0; w < out.n_watch; ++w)
    if (out.watch[w] < 0 || out.watch[w] >= s_.V)
      throw Error(LMD_ERR_INVALID,
                  "forward: watched id " + std::to_string(out.watch[w]) + " is outside the vocabulary");
  last_ns_ = -1;
  workers_->run([&](int r) {
    Rank& R = *ranks_[r];
    rank_forward(R, tokens, n, start_pos, 0, R.cap, n_logits, out);
  });
}

// A step: one sequence takes the one-sequence path (the decode graph and
// matrix-vector kernels for one token, cuBLAS for a prompt); several take
// the batched path (model_batch.cu).
template <typename T>
void CudaModel<T>::step(const int32_t* tokens, const lmdref_cuda_seq* seqs, int n_seqs,
                        Pick* picks) {
  if (n_seqs < 1) return;
  int n = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const lmdref_cuda_seq& q = seqs[i];
    if (q.slot < 0 || size_t(q.slot) >= ranges_.size() || !ranges_[q.slot].used || q.n < 1 || q.pos < 0)
      throw Error(LMD_ERR_INVALID, "step: sequence " + std::to_string(i) +
                                       " has a bad slot, token count or position");
    if (q.emit == LMDREF_EMIT_LOGITS && !q.logits)
      throw Error(LMD_ERR_INVALID, "step: a logits row was asked for without a buffer");
    if (q.emit == LMDREF_EMIT_CHOICE && (!q.choice || q.n_watch < 0 || (q.n_watch > 0 && (!q.watch || !q.watch_logits))))
      throw Error(LMD_ERR_INVALID, "step: a greedy choice was asked for without its buffers");
    for (int w = 0; w < (q.emit == LMDREF_EMIT_CHOICE ? q.n_watch : 0); ++w)
      if (q.watch[w] < 0 || q.watch[w] >= s_.V)
        throw Error(LMD_ERR_INVALID, "step: watched id " + std::to_string(q.watch[w]) + " is outside the vocabulary");
    const KvRange& r = ranges_[q.slot];
    if (q.pos + q.n > r.len)
      throw SequenceFull(q.slot, "the sequence outgrew its room in the KV cache (" + std::to_string(r.len) +
                                     " positions on this GPU; the other sequences hold the rest): position " +
                                     std::to_string(q.pos + q.n) + " was asked for");
    n += q.n;
  }
  check_tokens(tokens, n);
  last_ns_ = -1;
  if (n_seqs == 1) {
    const lmdref_cuda_seq& q = seqs[0];
    Output out;
    if (q.emit == LMDREF_EMIT_LOGITS) out.logits = q.logits;
    std::vector<float> scratch;
    if (q.emit == LMDREF_EMIT_NONE) {  // the logits of a prompt chunk are not wanted
      scratch.resize(size_t(s_.V));
      out.logits = scratch.data();
    }
    if (q.emit == LMDREF_EMIT_CHOICE) {
      out.picks = picks;
      out.watch = q.watch;
      out.n_watch = q.n_watch;
      out.watch_logits = q.watch_logits;
    }
    const KvRange& range = ranges_[q.slot];
    workers_->run([&](int r) {
      rank_forward(*ranks_[r], tokens, q.n, q.pos, range.base, range.len, 1, out);
    });
    return;
  }
  const BatchPlan p = plan_batch(tokens, seqs, n_seqs);
  workers_->run([&](int r) { rank_batch(*ranks_[r], p, seqs, n_seqs, picks); });
}

#define LMDCU_INSTANTIATE(T)                                                                  \
  template void CudaModel<T>::all_reduce(Rank&, float*, size_t);                              \
  template QkvTarget<T> CudaModel<T>::qkv_target(const Rank&, const Acts&, int) const;        \
  template AttentionArgs<T> CudaModel<T>::attention_args(const Rank&, const Acts&, int) const; \
  template void CudaModel<T>::step(Rank&, Acts&, int, int, const int32_t*, bool);             \
  template void CudaModel<T>::run_decode_step(Rank&);                                         \
  template void CudaModel<T>::hand_back(Rank&, const Acts&, int, const Output&);              \
  template void CudaModel<T>::enqueue_hand_back(Rank&, const Acts&, const Output&);           \
  template void CudaModel<T>::finish_hand_back(Rank&, const Output&);                         \
  template void CudaModel<T>::decode_ahead(Rank&, const int32_t*, int, int, int, const Output&); \
  template void CudaModel<T>::decode_step_stream(Rank&, Acts&, const int32_t*);               \
  template void CudaModel<T>::rank_forward(Rank&, const int32_t*, int, int, int, int, int,    \
                                           const Output&);                                    \
  template void CudaModel<T>::check_tokens(const int32_t*, int) const;                        \
  template void CudaModel<T>::forward(const int32_t*, int, int, int, const Output&);          \
  template void CudaModel<T>::step(const int32_t*, const lmdref_cuda_seq*, int, Pick*);

LMDCU_INSTANTIATE(__half)
LMDCU_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
