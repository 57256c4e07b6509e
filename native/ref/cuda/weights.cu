#include "weights.h"

#include <algorithm>
#include <cstdio>

#include "kernels.h"

namespace lmdcu {

namespace {

std::string fmt_gb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f GB", bytes / 1e9);
  return b;
}

}  // namespace

template <typename T>
void WeightFeed::load(const std::string& name, uint64_t full_rows, uint64_t full_cols,
                      uint64_t row0, uint64_t rows, uint64_t col0, uint64_t cols, T* dst,
                      uint64_t ld, cudaStream_t s, DevBuf& staging) {
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

void WeightFeed::load_quantized(const std::string& name, uint64_t full_rows, uint64_t full_cols,
                                uint64_t row0, uint64_t rows, uint64_t col0, uint64_t cols,
                                QFormat f, uint8_t* q, float* scale, cudaStream_t s,
                                DevBuf& staging, int* bad) {
  (void)full_rows;
  char err[1024] = {0};
  uint64_t key = 0;
  float rscale = 1.f;
  int32_t plus_one = 0;
  if (w_->random) {
    const int32_t rc =
        w_->rule(w_->ctx, name.c_str(), full_cols, &key, &rscale, &plus_one, err, sizeof err);
    if (rc) throw Error(rc, err);
  }
  const uint64_t block_rows = std::max<uint64_t>(1, (uint64_t(1) << 24) / full_cols);
  std::vector<float> host;
  for (uint64_t r = 0; r < rows; r += block_rows) {
    const uint64_t nr = std::min(block_rows, rows - r);
    staging.reserve(nr * full_cols * sizeof(float));
    if (w_->random) {
      launch_random_fill<float>(key, rscale, plus_one != 0, full_cols, row0 + r, 0, nr, full_cols,
                                ptr<float>(staging), full_cols, Launch{s, false});
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
    launch_quantize(f, ptr<float>(staging), nr, full_cols, col0, cols, q + r * cols, scale + r,
                    bad, Launch{s, false});
    CU_CHECK(cudaStreamSynchronize(s));
  }
  int host_bad = 0;
  CU_CHECK(cudaMemcpyAsync(&host_bad, bad, sizeof host_bad, cudaMemcpyDeviceToHost, s));
  CU_CHECK(cudaStreamSynchronize(s));
  if (host_bad)
    throw Error(LMD_ERR_INVALID, "tensor \"" + name +
                                     "\" holds a NaN or infinite weight; it cannot be quantized");
}

template <typename T>
void load_rank_weights(const Shape& s, int r, int v0, int v1, WeightFeed& feed,
                       cudaStream_t st, RankWeights<T>& out) {
  const int vloc = v1 - v0;
  const uint64_t H = s.H;
  auto al = [](uint64_t n) { return (n + 127) / 128 * 128; };
  const uint64_t lin_qkv = uint64_t(s.QKVl) * H, lin_o = H * s.Ql;
  const uint64_t lin_gu = 2 * uint64_t(s.Il) * H, lin_down = H * s.Il;
  const uint64_t per_layer = al(H) * 2 + al(s.QKVl) +
                             (s.quant ? 0 : al(lin_qkv) + al(lin_o) + al(lin_gu) + al(lin_down));
  const uint64_t embed_n = al(uint64_t(s.V) * H);
  const uint64_t head_n = s.tied || s.q_head ? 0 : al(uint64_t(vloc) * H);
  const uint64_t total = per_layer * s.layers + embed_n + head_n + al(H);
  // Quantized projections: a byte a weight and an fp32 scale a row, each
  // piece 256-byte aligned, plus the prefill's scratch for one layer's
  // dequantized matrices, each in its own place: the prefill dequantizes a
  // whole layer ahead, all four matrices before the first GEMM reads one
  // (model_step.cu), so no two of them may share memory.
  auto alb = [](uint64_t n) { return (n + 255) / 256 * 256; };
  auto qbytes = [&](uint64_t rows, uint64_t cols) { return alb(rows * cols) + alb(rows * 4); };
  uint64_t quant_bytes = 0, deq_n = 0;
  const uint64_t deq_o = al(lin_qkv), deq_gu = deq_o + al(lin_o), deq_down = deq_gu + al(lin_gu);
  if (s.quant) {
    quant_bytes = s.layers * (qbytes(s.QKVl, H) + qbytes(H, s.Ql) + qbytes(2 * uint64_t(s.Il), H) +
                              qbytes(H, s.Il));
    if (s.q_head) quant_bytes += qbytes(vloc, H);
    deq_n = deq_down + al(lin_down);
  }
  const uint64_t weight_bytes = total * sizeof(T) + quant_bytes + 2 * deq_n * sizeof(T);
  size_t free_b = 0, total_b = 0;
  CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
  if (weight_bytes + (1ull << 30) > free_b)
    throw Error(LMD_ERR_NOMEM, "the weights need " + fmt_gb(double(weight_bytes)) +
                                   " on this GPU (tp=" + std::to_string(s.tp) + "), " +
                                   fmt_gb(double(free_b)) + " free; use more GPUs (--tp)");
  out.storage.alloc(total * sizeof(T));
  out.quantized.alloc(quant_bytes + (s.quant ? 256 : 0));
  out.deq.alloc(2 * deq_n * sizeof(T));
  out.deq_stride = deq_n;
  out.bytes = weight_bytes;
  T* p = ptr<T>(out.storage);
  uint8_t* qp = ptr<uint8_t>(out.quantized);
  int* bad = nullptr;  // the quantizer's NaN/inf flag: the last 4 bytes of `quantized`
  if (s.quant) {
    bad = reinterpret_cast<int*>(qp + quant_bytes);
    CU_CHECK(cudaMemsetAsync(bad, 0, sizeof(int), st));  // before the quantizers on st
  }
  // A quantized rows × cols matrix: bytes, then scales.
  auto take_q = [&](int rows, int cols, T* deq) {
    Linear<T> m;
    m.rows = rows;
    m.cols = cols;
    m.format = s.qf;
    m.deq = deq;
    m.q = qp;
    qp += alb(uint64_t(rows) * cols);
    m.scale = reinterpret_cast<const float*>(qp);
    qp += alb(uint64_t(rows) * 4);
    return m;
  };
  // Rows [first, first + rows) of one of them, for a load.
  auto q_rows = [](const Linear<T>& m, uint64_t first) {
    return std::make_pair(const_cast<uint8_t*>(m.q) + first * m.cols,
                          const_cast<float*>(m.scale) + first);
  };
  T* deq = ptr<T>(out.deq);
  auto take = [&](uint64_t n) {
    T* q = p;
    p += al(n);
    return q;
  };
  DevBuf staging;

  const uint64_t Q = uint64_t(s.heads) * s.hd, KV = uint64_t(s.kv_heads) * s.hd, I = s.I;
  out.layers.resize(s.layers);
  for (int l = 0; l < s.layers; ++l) {
    LayerWeights<T>& L = out.layers[l];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    T* in_norm = take(H);
    T* post_norm = take(H);
    T* qkv_b = take(s.QKVl);
    L.in_norm = in_norm;
    L.post_norm = post_norm;
    L.qkv_bias = qkv_b;
    feed.load<T>(pre + "input_layernorm.weight", H, 1, 0, H, 0, 1, in_norm, 1, st, staging);
    feed.load<T>(pre + "post_attention_layernorm.weight", H, 1, 0, H, 0, 1, post_norm, 1, st, staging);
    const uint64_t qr = uint64_t(r) * s.Ql, kr = uint64_t(r) * s.KVl;
    const uint64_t ir = uint64_t(r) * s.Il;
    if (s.quant) {
      L.qkv = take_q(s.QKVl, s.H, deq);
      L.o = take_q(s.H, s.Ql, deq + deq_o);
      L.gate_up = take_q(2 * s.Il, s.H, deq + deq_gu);
      L.down = take_q(s.H, s.Il, deq + deq_down);
      auto load_q = [&](const std::string& name, uint64_t fr, uint64_t fc, uint64_t r0,
                        uint64_t nr, uint64_t c0, uint64_t nc, const Linear<T>& m, uint64_t first) {
        const auto dst = q_rows(m, first);
        feed.load_quantized(pre + name, fr, fc, r0, nr, c0, nc, s.qf, dst.first, dst.second, st,
                            staging, bad);
      };
      load_q("self_attn.q_proj.weight", Q, H, qr, s.Ql, 0, H, L.qkv, 0);
      load_q("self_attn.k_proj.weight", KV, H, kr, s.KVl, 0, H, L.qkv, s.Ql);
      load_q("self_attn.v_proj.weight", KV, H, kr, s.KVl, 0, H, L.qkv, s.Ql + s.KVl);
      // Row-parallel o and down: every output row, this rank's columns; the
      // scales are the whole rows', the same on every rank, and each rank's
      // partial sum is scaled before the all-reduce.
      load_q("self_attn.o_proj.weight", H, Q, 0, H, qr, s.Ql, L.o, 0);
      load_q("mlp.gate_proj.weight", I, H, ir, s.Il, 0, H, L.gate_up, 0);
      load_q("mlp.up_proj.weight", I, H, ir, s.Il, 0, H, L.gate_up, s.Il);
      load_q("mlp.down_proj.weight", H, I, 0, H, ir, s.Il, L.down, 0);
    } else {
      T* qkv = take(uint64_t(s.QKVl) * H);
      T* o = take(H * s.Ql);
      T* gu = take(2 * uint64_t(s.Il) * H);
      T* down = take(H * s.Il);
      L.qkv = Linear<T>{qkv, s.QKVl, s.H};
      L.o = Linear<T>{o, s.H, s.Ql};
      L.gate_up = Linear<T>{gu, 2 * s.Il, s.H};
      L.down = Linear<T>{down, s.H, s.Il};
      feed.load<T>(pre + "self_attn.q_proj.weight", Q, H, qr, s.Ql, 0, H, qkv, H, st, staging);
      feed.load<T>(pre + "self_attn.k_proj.weight", KV, H, kr, s.KVl, 0, H, qkv + s.Ql * H, H, st,
                   staging);
      feed.load<T>(pre + "self_attn.v_proj.weight", KV, H, kr, s.KVl, 0, H,
                   qkv + (s.Ql + s.KVl) * H, H, st, staging);
      feed.load<T>(pre + "self_attn.o_proj.weight", H, Q, 0, H, qr, s.Ql, o, s.Ql, st, staging);
      feed.load<T>(pre + "mlp.gate_proj.weight", I, H, ir, s.Il, 0, H, gu, H, st, staging);
      feed.load<T>(pre + "mlp.up_proj.weight", I, H, ir, s.Il, 0, H, gu + uint64_t(s.Il) * H, H,
                   st, staging);
      feed.load<T>(pre + "mlp.down_proj.weight", H, I, 0, H, ir, s.Il, down, s.Il, st, staging);
    }
    feed.load<T>(pre + "self_attn.q_proj.bias", Q, 1, qr, s.Ql, 0, 1, qkv_b, 1, st, staging);
    feed.load<T>(pre + "self_attn.k_proj.bias", KV, 1, kr, s.KVl, 0, 1, qkv_b + s.Ql, 1, st, staging);
    feed.load<T>(pre + "self_attn.v_proj.bias", KV, 1, kr, s.KVl, 0, 1, qkv_b + s.Ql + s.KVl, 1, st,
                 staging);
  }
  T* embed = take(uint64_t(s.V) * H);
  out.embed = embed;
  feed.load<T>("model.embed_tokens.weight", s.V, H, 0, s.V, 0, H, embed, H, st, staging);
  if (s.q_head) {
    // Only the head is quantized: a tied model keeps its embedding in T. No
    // scratch: the prefill applies it a logit row at a time.
    out.lm_head = take_q(vloc, s.H, nullptr);
    const auto dst = q_rows(out.lm_head, 0);
    feed.load_quantized(s.tied ? "model.embed_tokens.weight" : "lm_head.weight", s.V, H, v0, vloc,
                        0, H, s.qf, dst.first, dst.second, st, staging, bad);
  } else if (s.tied) {
    out.lm_head = Linear<T>{embed + uint64_t(v0) * H, vloc, s.H};
  } else {
    T* head = take(uint64_t(vloc) * H);
    out.lm_head = Linear<T>{head, vloc, s.H};
    feed.load<T>("lm_head.weight", s.V, H, v0, vloc, 0, H, head, H, st, staging);
  }
  T* final_norm = take(H);
  out.final_norm = final_norm;
  feed.load<T>("model.norm.weight", H, 1, 0, H, 0, 1, final_norm, 1, st, staging);
  CU_CHECK(cudaStreamSynchronize(st));
}

template void load_rank_weights<__half>(const Shape&, int, int, int, WeightFeed&, cudaStream_t,
                                        RankWeights<__half>&);
template void load_rank_weights<__nv_bfloat16>(const Shape&, int, int, int, WeightFeed&,
                                               cudaStream_t, RankWeights<__nv_bfloat16>&);

}  // namespace lmdcu
