#include "cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "cpu/attention.h"
#include "cpu/float_buffer.h"
#include "cpu/gemm.h"
#include "cpu/kv_cache.h"
#include "cpu/ops.h"
#include "cpu/packed_matrix.h"
#include "cpu/parallel.h"
#include "cpu/rope.h"
#include "kit.h"

namespace lmdref {

namespace {

// MLP rows per pass: bounds the gate/up activations of long prompts.
constexpr int kMlpRows = 256;

// One sequence's rows in a pass: rows [row0, row0 + n) of the activations
// are its positions [pos, pos + n), kept in cache.
struct Span {
  KvCache* cache;
  int row0, n, pos;
};

class CpuBackend : public Backend {
 public:
  CpuBackend(const ModelConfig& m, const WeightSource& src, int threads, uint32_t max_seq_len,
             double min_work, const CpuWeightOptions& w, int max_sequences)
      : m_(m), par_(threads, min_work), rope_(int(m.head_dim), m.rope_theta),
        limit_(max_seq_len), slots_(size_t(std::max(1, max_sequences))),
        used_(slots_.size(), false) {
    const bool q8 = w.int8;
    dtype_ = w.int8 ? "int8/fp32" : "fp32";
    layers_.resize(m.layers);
    for (uint32_t l = 0; l < m.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      Layer& L = layers_[l];
      load_vectors(src, {p + "input_layernorm.weight"}, L.input_norm);
      load_vectors(src, {p + "post_attention_layernorm.weight"}, L.post_norm);
      pack_tensors(par_, src,
                   {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                    p + "self_attn.v_proj.weight"},
                   L.qkv, q8);
      load_vectors(src,
                   {p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias",
                    p + "self_attn.v_proj.bias"},
                   L.qkv_bias);
      pack_tensors(par_, src, {p + "self_attn.o_proj.weight"}, L.o, q8);
      pack_tensors(par_, src, {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, L.gate_up,
                   q8);
      pack_tensors(par_, src, {p + "mlp.down_proj.weight"}, L.down, q8);
    }
    load_vectors(src, {"model.norm.weight"}, final_norm_);
    // A quantized lm_head never quantizes the embedding, even when tied.
    const bool q8_head = w.int8 && w.int8_lm_head;
    pack_tensors(par_, src, {m.tied ? "model.embed_tokens.weight" : "lm_head.weight"}, lm_head_,
                 q8_head);
    if (!m.tied || q8_head) load_vectors_2d(src, "model.embed_tokens.weight", embed_);
    cache_.configure(int(m.layers), int(m.kv_heads), int(m.head_dim), max_seq_len);
    for (KvCache& c : slots_) c.configure(int(m.layers), int(m.kv_heads), int(m.head_dim), max_seq_len);
    attn_shape_.heads = int(m.heads);
    attn_shape_.kv_heads = int(m.kv_heads);
    attn_shape_.head_dim = int(m.head_dim);
    attn_shape_.scale = static_cast<float>(std::pow(double(m.head_dim), -0.5));
  }

  const char* name() const override { return "ref-cpu"; }
  const char* dtype() const override { return dtype_; }

  void reset() override {}  // positions restart at 0 and overwrite the cache

  bool forward(const int32_t* tokens, int n, int start_pos, int n_logits, float* logits,
               const std::atomic<bool>* cancel) override;

  int max_sequences() const override { return int(slots_.size()); }
  int open_sequence(int positions) override;
  void close_sequence(int slot) override;
  bool step(const int32_t* tokens, const SeqStep* seqs, int n_seqs,
            const StepCancel& cancel) override;

 private:
  struct Layer {
    FloatBuffer input_norm, post_norm, qkv_bias;
    PackedMatrix qkv, o, gate_up, down;
  };

  ModelConfig m_;
  const char* dtype_ = "fp32";  // info().dtype: weights/activations when they differ
  Parallel par_;
  Rope rope_;
  AttentionShape attn_shape_;
  std::vector<Layer> layers_;
  FloatBuffer final_norm_;
  FloatBuffer embed_;      // row-major [vocab, hidden]; empty when tied to an fp32 lm_head
  PackedMatrix lm_head_;   // also the embedding table when tied and fp32
  KvCache cache_;          // forward()'s sequence
  uint32_t limit_;         // max_seq_len; 0: none
  std::vector<KvCache> slots_;  // step()'s sequences
  std::vector<bool> used_;
  FloatBuffer x_, h_, qkv_, attn_, tmp_, gate_up_, act_, logits_;

  static void load_vectors_2d(const WeightSource& src, const std::string& name, FloatBuffer& out) {
    TensorInfo ti = src.info(name);
    const uint64_t n = ti.shape[0] * ti.shape[1];
    out.assign_zero(n);
    src.read(name, 0, n, out.data());
  }

  void embed(const int32_t* tokens, int n, float* x) {
    const int64_t H = m_.hidden;
    par_.for_range(n, double(n) * H, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if (embed_.size() == 0) {
          lm_head_.get_row(uint64_t(tokens[i]), x + i * H);
        } else {
          std::copy_n(embed_.data() + int64_t(tokens[i]) * H, H, x + i * H);
        }
      }
    });
  }

  void check_tokens(const int32_t* tokens, int n) const;
  void reserve_rows(int n);
  // Every layer over the rows of spans (n rows in all): false when cancelled.
  bool layers(const Span* spans, int n_spans, int n, const std::function<bool()>& cancelled);
  void attention_block(Layer& L, int l, const Span* spans, int n_spans, int n);
  void mlp_block(Layer& L, int n);
};

void CpuBackend::attention_block(Layer& L, int l, const Span* spans, int n_spans, int n) {
  const int64_t H = m_.hidden, Q = m_.q_dim(), KV = m_.kv_dim(), QKV = Q + 2 * KV;
  const int hd = int(m_.head_dim), half = hd / 2;
  const float* x = x_.data();
  float* h = h_.data();
  float* qkv = qkv_.data();
  // Element-wise passes: a few units per element (rotations, exp: more).
  par_.for_range(n, 3.0 * n * H, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      rms_norm(x + i * H, L.input_norm.data(), h + i * H, H, m_.rms_eps);
  });
  gemm(par_, h, n, H, L.qkv, L.qkv_bias.data(), qkv, QKV);

  // Rotate q and k, then move k (transposed) and v into each sequence's cache.
  constexpr int64_t B = KvCache::kBlock;
  for (int sp = 0; sp < n_spans; ++sp) {
    const Span& span = spans[sp];
    par_.for_range(span.n, 8.0 * span.n * QKV, [&](int64_t b, int64_t e) {
      std::vector<float> cs(hd);
      for (int64_t i = b; i < e; ++i) {
        const int64_t pos = span.pos + i;
        float* row = qkv + (span.row0 + i) * QKV;
        rope_.angles(pos, cs.data(), cs.data() + half);
        rope_.rotate(row, int(m_.heads), cs.data(), cs.data() + half);
        rope_.rotate(row + Q, int(m_.kv_heads), cs.data(), cs.data() + half);
        for (uint32_t g = 0; g < m_.kv_heads; ++g) {
          const float* k = row + Q + int64_t(g) * hd;
          const float* v = row + Q + KV + int64_t(g) * hd;
          float* kt = span.cache->keys_t(l, int(g)) + (pos / B) * hd * B + pos % B;
          for (int d = 0; d < hd; ++d) kt[d * B] = k[d];
          std::copy_n(v, hd, span.cache->values(l, int(g)) + pos * hd);
        }
      }
    });
  }

  std::vector<AttentionRows> rows(static_cast<size_t>(n_spans));
  for (int sp = 0; sp < n_spans; ++sp) {
    rows[sp].cache = spans[sp].cache;
    rows[sp].q = qkv + int64_t(spans[sp].row0) * QKV;
    rows[sp].out = attn_.data() + int64_t(spans[sp].row0) * Q;
    rows[sp].n = spans[sp].n;
    rows[sp].start_pos = spans[sp].pos;
  }
  attention(par_, attn_shape_, l, rows.data(), n_spans, QKV, Q);
  gemm(par_, attn_.data(), n, Q, L.o, nullptr, tmp_.data(), H);
  add_in_place(x_.data(), tmp_.data(), int64_t(n) * H);
}

void CpuBackend::mlp_block(Layer& L, int n) {
  const int64_t H = m_.hidden, I = m_.intermediate;
  for (int r0 = 0; r0 < n; r0 += kMlpRows) {
    const int rows = std::min(kMlpRows, n - r0);
    float* x = x_.data() + int64_t(r0) * H;
    float* h = h_.data();
    float* gu = gate_up_.data();
    float* act = act_.data();
    par_.for_range(rows, 3.0 * rows * H, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        rms_norm(x + i * H, L.post_norm.data(), h + i * H, H, m_.rms_eps);
    });
    gemm(par_, h, rows, H, L.gate_up, nullptr, gu, 2 * I);
    par_.for_range(rows, 10.0 * rows * I, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) silu_mul(gu + i * 2 * I, gu + i * 2 * I + I, act + i * I, I);
    });
    gemm(par_, act, rows, I, L.down, nullptr, tmp_.data(), H);
    add_in_place(x, tmp_.data(), int64_t(rows) * H);
  }
}

void CpuBackend::check_tokens(const int32_t* tokens, int n) const {
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || uint32_t(tokens[i]) >= m_.vocab)
      invalid("forward: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
}

void CpuBackend::reserve_rows(int n) {
  const int64_t H = m_.hidden, Q = m_.q_dim(), QKV = Q + 2 * int64_t(m_.kv_dim());
  const int mlp_rows = std::min(n, kMlpRows);
  x_.reserve(size_t(n) * H);
  h_.reserve(size_t(n) * H);
  tmp_.reserve(size_t(n) * H);
  qkv_.reserve(size_t(n) * QKV);
  attn_.reserve(size_t(n) * Q);
  gate_up_.reserve(size_t(mlp_rows) * 2 * m_.intermediate);
  act_.reserve(size_t(mlp_rows) * m_.intermediate);
}

bool CpuBackend::layers(const Span* spans, int n_spans, int n,
                        const std::function<bool()>& cancelled) {
  for (uint32_t l = 0; l < m_.layers; ++l) {
    if (cancelled()) return false;
    attention_block(layers_[l], int(l), spans, n_spans, n);
    mlp_block(layers_[l], n);
  }
  return true;
}

bool CpuBackend::forward(const int32_t* tokens, int n, int start_pos, int n_logits, float* logits,
                         const std::atomic<bool>* cancel) {
  if (n < 1 || n_logits < 1 || n_logits > n || start_pos < 0)
    invalid("forward: bad token count or position");
  check_tokens(tokens, n);
  const int64_t H = m_.hidden;
  cache_.reserve(int64_t(start_pos) + n, start_pos);
  reserve_rows(n);
  embed(tokens, n, x_.data());
  const Span span{&cache_, 0, n, start_pos};
  if (!layers(&span, 1, n, [&] { return cancel && cancel->load(std::memory_order_relaxed); }))
    return false;

  const float* last = x_.data() + int64_t(n - n_logits) * H;
  for (int i = 0; i < n_logits; ++i)
    rms_norm(last + i * H, final_norm_.data(), h_.data() + i * H, H, m_.rms_eps);
  gemm(par_, h_.data(), n_logits, H, lm_head_, nullptr, logits, m_.vocab);
  return true;
}

int CpuBackend::open_sequence(int positions) {
  if (positions < 1 || (limit_ > 0 && uint32_t(positions) > limit_))
    invalid("open_sequence: " + std::to_string(positions) + " positions do not fit max_seq_len " +
            std::to_string(limit_));
  for (size_t s = 0; s < used_.size(); ++s)
    if (!used_[s]) {
      used_[s] = true;
      return int(s);
    }
  return -1;
}

void CpuBackend::close_sequence(int slot) {
  if (slot < 0 || size_t(slot) >= used_.size()) return;
  used_[slot] = false;
  // The cache grows again on demand: an idle slot holds no memory.
  slots_[slot].configure(int(m_.layers), int(m_.kv_heads), int(m_.head_dim), limit_);
}

bool CpuBackend::step(const int32_t* tokens, const SeqStep* seqs, int n_seqs,
                      const StepCancel& cancel) {
  int n = 0, n_emit = 0;
  for (int i = 0; i < n_seqs; ++i) {
    const SeqStep& q = seqs[i];
    if (q.slot < 0 || size_t(q.slot) >= used_.size() || !used_[q.slot] || q.n < 1 || q.pos < 0)
      invalid("step: sequence " + std::to_string(i) + " has a bad slot, token count or position");
    if (q.choice) invalid("step: the CPU backend hands back logits rows, not greedy choices");
    n += q.n;
    n_emit += q.emits() ? 1 : 0;
  }
  if (n == 0) return true;
  check_tokens(tokens, n);
  const int64_t H = m_.hidden, V = m_.vocab;
  std::vector<Span> spans(static_cast<size_t>(n_seqs));
  int row = 0;
  for (int i = 0; i < n_seqs; ++i) {
    KvCache& c = slots_[seqs[i].slot];
    c.reserve(int64_t(seqs[i].pos) + seqs[i].n, seqs[i].pos);
    spans[i] = Span{&c, row, seqs[i].n, seqs[i].pos};
    row += seqs[i].n;
  }
  reserve_rows(std::max(n, n_emit));
  embed(tokens, n, x_.data());
  if (!layers(spans.data(), n_seqs, n, [&] { return cancel.all_set(); })) return false;

  // The last row of each emitting sequence: final norm, then the lm_head for all of them at once.
  if (n_emit == 0) return true;
  int k = 0;
  for (int i = 0; i < n_seqs; ++i) {
    if (!seqs[i].emits()) continue;
    const float* last = x_.data() + int64_t(spans[i].row0 + spans[i].n - 1) * H;
    rms_norm(last, final_norm_.data(), h_.data() + int64_t(k++) * H, H, m_.rms_eps);
  }
  logits_.reserve(size_t(n_emit) * V);
  gemm(par_, h_.data(), n_emit, H, lm_head_, nullptr, logits_.data(), V);
  k = 0;
  for (int i = 0; i < n_seqs; ++i)
    if (seqs[i].emits()) std::copy_n(logits_.data() + int64_t(k++) * V, V, seqs[i].logits);
  return true;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& m, const WeightSource& src,
                                          int threads, uint32_t max_seq_len, double min_work,
                                          const CpuWeightOptions& w, int max_sequences) {
  return std::make_unique<CpuBackend>(m, src, threads, max_seq_len, min_work, w, max_sequences);
}

}  // namespace lmdref
