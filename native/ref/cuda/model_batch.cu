// A batched step: several sequences in one forward. Their rows go through
// every projection together (cuBLAS over all rows), each row is rotated at
// its own position into its own sequence's range of the KV cache, prompt
// chunks attend with the prefill kernel one sequence at a time, and the
// decoding sequences (one row each) share one launch of the decode kernel.
// The last row of each sequence that hands something back is gathered for
// the lm_head; its greedy choice is made on the device, row by row.
#include <cstring>

#include "model.h"

namespace lmdcu {

template <typename T>
typename CudaModel<T>::BatchPlan CudaModel<T>::plan_batch(const int32_t* tokens,
                                                          const lmdref_cuda_seq* seqs,
                                                          int n_seqs) const {
  BatchPlan p;
  p.row0.resize(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    p.row0[i] = p.n;
    p.n += seqs[i].n;
    p.decoding += seqs[i].n == 1 ? 1 : 0;
    p.emitting += seqs[i].emit != LMDREF_EMIT_NONE ? 1 : 0;
    p.any_logits = p.any_logits || seqs[i].emit == LMDREF_EMIT_LOGITS;
    p.any_choice = p.any_choice || seqs[i].emit == LMDREF_EMIT_CHOICE;
  }
  p.o_pos = p.n;
  p.o_base = 2 * p.n;
  p.o_states = 3 * p.n;
  p.o_dec_states = p.o_states + 4 * n_seqs;
  p.o_dec_rows = p.o_dec_states + 4 * p.decoding;
  p.o_emit = p.o_dec_rows + p.decoding;
  p.meta.assign(size_t(p.o_emit + p.emitting), 0);
  std::memcpy(p.meta.data(), tokens, size_t(p.n) * sizeof(int32_t));
  int d = 0, e = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const lmdref_cuda_seq& q = seqs[i];
    const int base = ranges_[q.slot].base;
    for (int j = 0; j < q.n; ++j) {
      p.meta[p.o_pos + p.row0[i] + j] = q.pos + j;
      p.meta[p.o_base + p.row0[i] + j] = base;
    }
    int32_t* st = &p.meta[p.o_states + 4 * i];
    st[0] = q.pos;
    st[1] = tokens[p.row0[i]];
    st[2] = base;
    if (q.n == 1) {
      std::memcpy(&p.meta[p.o_dec_states + 4 * d], st, 4 * sizeof(int32_t));
      p.meta[p.o_dec_rows + d] = p.row0[i];
      ++d;
    }
    if (q.emit != LMDREF_EMIT_NONE) p.meta[p.o_emit + e++] = p.row0[i] + q.n - 1;
  }
  return p;
}

template <typename T>
void CudaModel<T>::rank_batch(Rank& R, const BatchPlan& p, const lmdref_cuda_seq* seqs, int n_seqs,
                              Pick* picks) {
  const Shape& s = s_;
  const Launch& st = R.kernels;
  const int n = p.n, k = p.emitting;
  CU_CHECK(cudaStreamSynchronize(R.stream));  // buffers may be reallocated below
  R.ahead.queued = false;  // a step queued ahead for one sequence: stream order keeps it harmless
  size_acts(R.pre, n, std::max(k, 1));
  Acts& a = R.pre;
  const size_t meta_bytes = p.meta.size() * sizeof(int32_t);
  R.meta.reserve(meta_bytes);
  R.h_meta.reserve(meta_bytes);
  std::memcpy(R.h_meta.p, p.meta.data(), meta_bytes);
  CU_CHECK(cudaMemcpyAsync(R.meta.p, R.h_meta.p, meta_bytes, cudaMemcpyHostToDevice, R.stream));
  const int32_t* meta = ptr<int32_t>(R.meta);
  if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev0, R.stream));

  T* x = ptr<T>(a.x);
  T* h = ptr<T>(a.h);
  float* out = ptr<float>(a.out);
  // One GPU: the o and down projections leave T (as the one-sequence prefill).
  const bool t_delta = s.tp == 1;
  T* out_t = reinterpret_cast<T*>(out);
  const cudaDataType_t delta_type = t_delta ? Types<T>::cuda : CUDA_R_32F;
  auto norm = [&](T* xr, bool add, const T* w, T* hr, int rows) {
    if (t_delta)
      launch_rmsnorm<T, T>(xr, add ? out_t : nullptr, w, hr, rows, s.H, s.eps, st);
    else
      launch_rmsnorm<T, float>(xr, add ? out : nullptr, w, hr, rows, s.H, s.eps, st);
  };
  DecodeSplits dsplit;
  dsplit.parts = decode_batch_parts(R.sms, s.kvh, std::max(p.decoding, 1));
  dsplit.part_o = ptr<float>(R.part_ob);
  dsplit.part_ml = ptr<float>(R.part_mlb);

  // Quantized weights: each matrix is dequantized in line into the scratch
  // (half 0) before its GEMM, as the one-sequence prefill does without overlap.
  auto prepare = [&](const Linear<T>& W) { linear_prepare<T>(W, st); };
  launch_embed<T>(meta, n, R.w.embed, s.H, x, st);
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights<T>& L = R.w.layers[l];
    QkvTarget<T> qkv = qkv_target(R, a, l);
    qkv.row_pos = meta + p.o_pos;
    qkv.row_base = meta + p.o_base;

    norm(x, l > 0, L.in_norm, h, n);
    prepare(L.qkv);
    linear_gemm<T>(R.blas, L.qkv, h, n, a.qkv.p, CUDA_R_32F);
    launch_rope_qkv<T>(ptr<float>(a.qkv), n, qkv, st);
    AttentionArgs<T> att = attention_args(R, a, l);  // q and out move per sequence below
    for (int i = 0; i < n_seqs; ++i) {  // prompt chunks: one sequence at a time
      if (seqs[i].n == 1) continue;
      att.q = ptr<T>(a.q) + int64_t(p.row0[i]) * s.Ql;
      att.out = ptr<T>(a.attn) + int64_t(p.row0[i]) * s.Ql;
      att.state = meta + p.o_states + 4 * i;
      att.n = seqs[i].n;
      launch_prefill_attention<T>(att, st);
    }
    if (p.decoding > 0) {  // one row per sequence: all of them in one launch
      att.q = ptr<T>(a.q);
      att.out = ptr<T>(a.attn);
      DecodeBatch b;
      b.count = p.decoding;
      b.states = meta + p.o_dec_states;
      b.rows = meta + p.o_dec_rows;
      launch_decode_attention_batch<T>(att, b, dsplit, st);
    }
    prepare(L.o);
    linear_gemm<T>(R.blas, L.o, ptr<T>(a.attn), n, out, delta_type);
    if (!t_delta) all_reduce(R, out, size_t(n) * s.H);
    norm(x, true, L.post_norm, h, n);
    prepare(L.gate_up);
    prepare(L.down);
    for (int r0 = 0; r0 < n; r0 += a.mlp_rows) {
      const int rows = std::min(a.mlp_rows, n - r0);
      linear_gemm<T>(R.blas, L.gate_up, h + int64_t(r0) * s.H, rows, a.gu.p, Types<T>::cuda);
      launch_silu_mul<T>(ptr<T>(a.gu), rows, s.Il, ptr<T>(a.act), st);
      void* dst = t_delta ? static_cast<void*>(out_t + int64_t(r0) * s.H)
                          : static_cast<void*>(out + int64_t(r0) * s.H);
      linear_gemm<T>(R.blas, L.down, ptr<T>(a.act), rows, dst, delta_type);
    }
    if (!t_delta) all_reduce(R, out, size_t(n) * s.H);
  }
  // x += down → final RMSNorm of every row → the emitting rows → lm_head.
  const int vloc = R.v1 - R.v0;
  norm(x, true, R.w.final_norm, h, n);
  if (k > 0) {
    launch_gather_rows<T>(h, meta + p.o_emit, k, s.H, ptr<T>(a.hl), st);
    if (R.w.lm_head.quantized())  // no vocabulary-sized scratch: a row at a time
      for (int i = 0; i < k; ++i)
        linear_gemv<T>(R.w.lm_head, ptr<T>(a.hl) + int64_t(i) * s.H,
                       ptr<float>(a.logits) + int64_t(i) * vloc, st);
    else
      linear_gemm<T>(R.blas, R.w.lm_head, ptr<T>(a.hl), k, a.logits.p, CUDA_R_32F);
    launch_round_rows<T>(ptr<float>(a.logits), k, vloc,
                         p.any_choice ? ptr<PickScratch>(R.picks) : nullptr, st);
  }
  if (R.rank == 0) CU_CHECK(cudaEventRecord(R.ev1, R.stream));

  // What crosses back: each emitting sequence's choice (a few bytes), its
  // watched logits, and only for sequences that sample, their logits rows.
  if (k > 0 && p.any_choice) {
    R.h_picks.reserve(size_t(k) * sizeof(PickScratch));
    CU_CHECK(cudaMemcpyAsync(R.h_picks.p, R.picks.p, size_t(k) * sizeof(PickScratch),
                             cudaMemcpyDeviceToHost, R.stream));
  }
  if (k > 0 && p.any_logits) {
    R.h_logits.reserve(size_t(k) * vloc * sizeof(float));
    CU_CHECK(cudaMemcpyAsync(R.h_logits.p, a.logits.p, size_t(k) * vloc * sizeof(float),
                             cudaMemcpyDeviceToHost, R.stream));
  }
  // Watched logits: one float each, where the id falls in this rank's slice.
  int nw = 0;
  for (int i = 0; i < n_seqs; ++i)
    if (seqs[i].emit == LMDREF_EMIT_CHOICE) nw += seqs[i].n_watch;
  R.h_pick.reserve(sizeof(Pick) + size_t(nw) * sizeof(float));
  float* hw = reinterpret_cast<float*>(ptr<Pick>(R.h_pick) + 1);
  {
    int e = 0, w0 = 0;
    for (int i = 0; i < n_seqs; ++i) {
      const lmdref_cuda_seq& q = seqs[i];
      if (q.emit == LMDREF_EMIT_NONE) continue;
      if (q.emit == LMDREF_EMIT_CHOICE)
        for (int w = 0; w < q.n_watch; ++w)
          if (q.watch[w] >= R.v0 && q.watch[w] < R.v1)
            CU_CHECK(cudaMemcpyAsync(hw + w0 + w, ptr<float>(a.logits) + int64_t(e) * vloc + (q.watch[w] - R.v0),
                                     sizeof(float), cudaMemcpyDeviceToHost, R.stream));
      if (q.emit == LMDREF_EMIT_CHOICE) w0 += q.n_watch;
      ++e;
    }
  }
  CU_CHECK(cudaStreamSynchronize(R.stream));
  int e = 0, w0 = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const lmdref_cuda_seq& q = seqs[i];
    if (q.emit == LMDREF_EMIT_NONE) continue;
    if (q.emit == LMDREF_EMIT_CHOICE) {
      Pick pk = ptr<PickScratch>(R.h_picks)[e].result;
      if (pk.index >= 0) pk.index += R.v0;
      picks[int64_t(e) * s.tp + R.rank] = pk;
      for (int w = 0; w < q.n_watch; ++w)
        if (q.watch[w] >= R.v0 && q.watch[w] < R.v1) q.watch_logits[w] = hw[w0 + w];
      w0 += q.n_watch;
    } else {
      std::memcpy(q.logits + R.v0, ptr<float>(R.h_logits) + int64_t(e) * vloc, size_t(vloc) * sizeof(float));
    }
    ++e;
  }
  if (R.rank == 0) {
    float ms = 0.f;
    CU_CHECK(cudaEventElapsedTime(&ms, R.ev0, R.ev1));
    last_ns_ = int64_t(double(ms) * 1e6);
  }
}

#define LMDCU_INSTANTIATE(T)                                                                  \
  template CudaModel<T>::BatchPlan CudaModel<T>::plan_batch(const int32_t*,                   \
                                                            const lmdref_cuda_seq*, int) const; \
  template void CudaModel<T>::rank_batch(Rank&, const BatchPlan&, const lmdref_cuda_seq*, int, \
                                         Pick*);

LMDCU_INSTANTIATE(__half)
LMDCU_INSTANTIATE(__nv_bfloat16)

}  // namespace lmdcu
