// The CPU backend against a plain double-precision transcription of the Qwen2
// forward pass (the Hugging Face computation), on shapes chosen to cross every
// blocking boundary; plus KV-cache decode == prefill, thread-count
// independence and cancellation between layers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "check.h"
#include "cpu/cpu_backend.h"
#include "fixtures.h"
#include "model_config.h"
#include "weight_source.h"

using namespace lmdref;

namespace {

using Vec = std::vector<double>;

Vec load(const WeightSource& src, const std::string& name) {
  TensorInfo ti = src.info(name);
  uint64_t n = 1;
  for (uint64_t d : ti.shape) n *= d;
  std::vector<float> f(n);
  src.read(name, 0, n, f.data());
  return Vec(f.begin(), f.end());
}

// y[o] = sum_i W[o, i] x[i] (+ b[o])
Vec linear(const Vec& W, const Vec* b, const Vec& x, size_t out) {
  const size_t in = x.size();
  Vec y(out);
  for (size_t o = 0; o < out; ++o) {
    double s = 0;
    for (size_t i = 0; i < in; ++i) s += W[o * in + i] * x[i];
    y[o] = s + (b ? (*b)[o] : 0);
  }
  return y;
}

Vec rms_norm(const Vec& x, const Vec& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = w[i] * x[i] * r;
  return y;
}

void rope(double* v, int hd, int64_t pos, double theta) {
  const int half = hd / 2;
  for (int i = 0; i < half; ++i) {
    const double a = pos / std::pow(theta, 2.0 * i / hd);
    const double x1 = v[i], x2 = v[i + half];
    v[i] = x1 * std::cos(a) - x2 * std::sin(a);
    v[i + half] = x2 * std::cos(a) + x1 * std::sin(a);
  }
}

// Logits of every position of the prompt.
std::vector<Vec> reference(const ModelConfig& m, const WeightSource& src, const std::vector<int32_t>& toks) {
  const size_t n = toks.size(), H = m.hidden, hd = m.head_dim;
  const Vec embed = load(src, "model.embed_tokens.weight");
  std::vector<Vec> x(n, Vec(H));
  for (size_t t = 0; t < n; ++t) std::copy_n(embed.begin() + toks[t] * H, H, x[t].begin());
  for (uint32_t l = 0; l < m.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const Vec wq = load(src, p + "self_attn.q_proj.weight"), bq = load(src, p + "self_attn.q_proj.bias");
    const Vec wk = load(src, p + "self_attn.k_proj.weight"), bk = load(src, p + "self_attn.k_proj.bias");
    const Vec wv = load(src, p + "self_attn.v_proj.weight"), bv = load(src, p + "self_attn.v_proj.bias");
    const Vec wo = load(src, p + "self_attn.o_proj.weight");
    const Vec n1 = load(src, p + "input_layernorm.weight"), n2 = load(src, p + "post_attention_layernorm.weight");
    const Vec wg = load(src, p + "mlp.gate_proj.weight"), wu = load(src, p + "mlp.up_proj.weight");
    const Vec wd = load(src, p + "mlp.down_proj.weight");
    std::vector<Vec> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      Vec h = rms_norm(x[t], n1, m.rms_eps);
      q[t] = linear(wq, &bq, h, m.q_dim());
      k[t] = linear(wk, &bk, h, m.kv_dim());
      v[t] = linear(wv, &bv, h, m.kv_dim());
      for (uint32_t a = 0; a < m.heads; ++a) rope(&q[t][a * hd], int(hd), int64_t(t), m.rope_theta);
      for (uint32_t a = 0; a < m.kv_heads; ++a) rope(&k[t][a * hd], int(hd), int64_t(t), m.rope_theta);
    }
    const uint32_t group = m.heads / m.kv_heads;
    for (size_t t = 0; t < n; ++t) {
      Vec att(m.q_dim());
      for (uint32_t a = 0; a < m.heads; ++a) {
        const uint32_t g = a / group;
        Vec s(t + 1);
        double mx = -1e300;
        for (size_t j = 0; j <= t; ++j) {
          double d = 0;
          for (size_t e = 0; e < hd; ++e) d += q[t][a * hd + e] * k[j][g * hd + e];
          s[j] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t j = 0; j <= t; ++j)
          for (size_t e = 0; e < hd; ++e) att[a * hd + e] += s[j] / sum * v[j][g * hd + e];
      }
      const Vec o = linear(wo, nullptr, att, H);
      for (size_t i = 0; i < H; ++i) x[t][i] += o[i];
      const Vec h = rms_norm(x[t], n2, m.rms_eps);
      const Vec gt = linear(wg, nullptr, h, m.intermediate), up = linear(wu, nullptr, h, m.intermediate);
      Vec act(m.intermediate);
      for (size_t i = 0; i < act.size(); ++i) act[i] = gt[i] / (1 + std::exp(-gt[i])) * up[i];
      const Vec d = linear(wd, nullptr, act, H);
      for (size_t i = 0; i < H; ++i) x[t][i] += d[i];
    }
  }
  const Vec fn = load(src, "model.norm.weight");
  // A tied model's head is the embedding, unless the source shows an lm_head
  // of its own (fixtures::DequantizedSource with a quantized head).
  const bool own_head = !m.tied || src.info("lm_head.weight").found;
  const Vec head = load(src, own_head ? "lm_head.weight" : "model.embed_tokens.weight");
  std::vector<Vec> logits(n);
  for (size_t t = 0; t < n; ++t) logits[t] = linear(head, nullptr, rms_norm(x[t], fn, m.rms_eps), m.vocab);
  return logits;
}

// max |a - b| / max |b| over one row.
double rel_err(const float* a, const Vec& b) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return worst / scale;
}

double rel_err(const float* a, const float* b, size_t n) {
  return rel_err(a, Vec(b, b + n));
}

ModelConfig shape(uint32_t vocab, uint32_t hidden, uint32_t inter, uint32_t layers, uint32_t heads,
                  uint32_t kv, bool tied, double theta) {
  ModelConfig m;
  m.vocab = vocab;
  m.hidden = hidden;
  m.intermediate = inter;
  m.layers = layers;
  m.heads = heads;
  m.kv_heads = kv;
  m.head_dim = hidden / heads;
  m.tied = tied;
  m.max_pos = 4096;
  m.rope_theta = theta;
  m.rms_eps = 1e-6f;
  return m;
}

void check_model(const ModelConfig& m, int n_prompt, uint64_t seed) {
  auto src = make_random_source(m, seed);
  std::vector<int32_t> toks(n_prompt);
  for (int i = 0; i < n_prompt; ++i) toks[i] = int32_t((i * 7919 + 13) % m.vocab);
  const std::vector<Vec> want = reference(m, *src, toks);

  // Prefill: the last 3 positions, in order.
  auto b = make_cpu_backend(m, *src, 2, 0, 0.0);
  const int k = 3;
  std::vector<float> got(size_t(k) * m.vocab);
  CHECK(b->forward(toks.data(), n_prompt, 0, k, got.data(), nullptr));
  for (int r = 0; r < k; ++r) {
    const double e = rel_err(got.data() + size_t(r) * m.vocab, want[n_prompt - k + r]);
    if (!(e < 1e-5))
      check::fail(__FILE__, __LINE__, "prefill row " + std::to_string(r) + " rel err " + std::to_string(e));
  }

  // Decode: prefill a prefix, then one token at a time through the cache.
  const int split = n_prompt / 2;
  std::vector<float> step(m.vocab);
  b->reset();
  CHECK(b->forward(toks.data(), split, 0, 1, step.data(), nullptr));
  double worst = rel_err(step.data(), want[split - 1]);
  for (int t = split; t < n_prompt; ++t) {
    CHECK(b->forward(&toks[t], 1, t, 1, step.data(), nullptr));
    worst = std::max(worst, rel_err(step.data(), want[t]));
  }
  if (!(worst < 1e-5)) check::fail(__FILE__, __LINE__, "decode rel err " + std::to_string(worst));

  // Any thread count and split computes the same bits: sums never depend on
  // the split (min_work 0 splits every loop, however small; the default
  // keeps small loops on one thread).
  for (double min_work : {0.0, Parallel::kMinWork}) {
    for (int threads : {1, 3}) {
      auto other = make_cpu_backend(m, *src, threads, 0, min_work);
      std::vector<float> again(size_t(k) * m.vocab);
      other->forward(toks.data(), n_prompt, 0, k, again.data(), nullptr);
      CHECK(again == got);
    }
  }

  // Cancellation is seen between layers.
  std::atomic<bool> cancel{true};
  CHECK(!b->forward(toks.data(), n_prompt, 0, 1, step.data(), &cancel));

  std::printf("%u-layer %ux%u model, %d tokens: prefill rel err %.2e, decode %.2e\n", m.layers,
              m.hidden, m.intermediate, n_prompt,
              rel_err(got.data() + size_t(k - 1) * m.vocab, want[n_prompt - 1]), worst);
}

// Several sequences in one batched step, their prompts in chunks that
// straddle steps and sequences joining later, give bit for bit the logits of
// each sequence run alone through forward().
void check_batch(const ModelConfig& m, uint64_t seed) {
  auto src = make_random_source(m, seed);
  struct Seq {
    std::vector<int32_t> toks;  // prompt, then the tokens fed while decoding
    int prompt;
    std::vector<std::vector<float>> alone;  // logits after positions prompt-1 … toks.size()-1
    std::vector<std::vector<float>> batched;
    int slot = -1, fed = 0;
  };
  std::vector<Seq> seqs;
  const int prompts[] = {37, 5, 20, 1};
  for (int i = 0; i < 4; ++i) {
    Seq q;
    q.prompt = prompts[i];
    for (int t = 0; t < q.prompt + 6; ++t) q.toks.push_back(int32_t((t * 131 + i * 977 + 5) % m.vocab));
    seqs.push_back(q);
  }
  {
    auto b = make_cpu_backend(m, *src, 2, 0);
    for (Seq& q : seqs) {
      std::vector<float> row(m.vocab);
      CHECK(b->forward(q.toks.data(), q.prompt, 0, 1, row.data(), nullptr));
      q.alone.push_back(row);
      for (size_t t = q.prompt; t < q.toks.size(); ++t) {
        CHECK(b->forward(&q.toks[t], 1, int(t), 1, row.data(), nullptr));
        q.alone.push_back(row);
      }
    }
  }
  auto b = make_cpu_backend(m, *src, 3, 0, 0.0, CpuWeightOptions{}, 4);  // every loop split
  CHECK(b->max_sequences() == 4);
  // Prompt chunks of at most 8 tokens; sequence i joins at step i.
  for (int stepno = 0; stepno < 40; ++stepno) {
    std::vector<SeqStep> steps;
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> rows;
    rows.reserve(seqs.size());
    std::vector<size_t> who;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& q = seqs[i];
      if (int(i) > stepno || q.fed == int(q.toks.size())) continue;
      if (q.slot < 0) q.slot = b->open_sequence(int(q.toks.size()));
      CHECK(q.slot >= 0);
      SeqStep st;
      st.slot = q.slot;
      st.pos = q.fed;
      st.n = q.fed < q.prompt ? std::min(8, q.prompt - q.fed) : 1;
      tokens.insert(tokens.end(), q.toks.begin() + q.fed, q.toks.begin() + q.fed + st.n);
      q.fed += st.n;
      if (q.fed >= q.prompt) {
        rows.emplace_back(m.vocab);
        st.logits = rows.back().data();
      }
      steps.push_back(st);
      who.push_back(i);
    }
    if (steps.empty()) break;
    CHECK(b->step(tokens.data(), steps.data(), int(steps.size()), StepCancel{}));
    for (size_t k = 0; k < steps.size(); ++k)
      if (steps[k].logits) seqs[who[k]].batched.emplace_back(steps[k].logits, steps[k].logits + m.vocab);
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    CHECK(seqs[i].batched.size() == seqs[i].alone.size());
    CHECK(seqs[i].batched == seqs[i].alone);
    b->close_sequence(seqs[i].slot);
  }
  // Slots are handed out until full, and again once closed.
  std::vector<int> slots;
  for (int i = 0; i < 4; ++i) slots.push_back(b->open_sequence(10));
  CHECK(b->open_sequence(10) == -1);
  b->close_sequence(slots[2]);
  CHECK(b->open_sequence(10) == slots[2]);
  // A step whose sequences were all cancelled stops.
  std::atomic<bool> c1{true}, c2{false};
  const std::atomic<bool>* flags[] = {&c1, &c2};
  SeqStep one;
  one.slot = slots[0];
  one.n = 1;
  std::vector<float> row(m.vocab);
  one.logits = row.data();
  int32_t tok = 1;
  CHECK(b->step(&tok, &one, 1, StepCancel{flags, 2}));
  c2 = true;
  CHECK(!b->step(&tok, &one, 1, StepCancel{flags, 2}));
  std::printf("batched steps of %zu sequences match each sequence alone, bit for bit\n", seqs.size());
}

// Int8 weights: the backend computes the dequantized model (int8 values ×
// scales in fp32) to fp32 accuracy, in prefill and in decode, with and
// without a quantized lm_head; and the quantization is not a no-op.
void check_int8(const ModelConfig& m, int n_prompt, uint64_t seed) {
  auto src = make_random_source(m, seed);
  std::vector<int32_t> toks(n_prompt);
  for (int i = 0; i < n_prompt; ++i) toks[i] = int32_t((i * 7919 + 13) % m.vocab);
  for (bool head : {false, true}) {
    fixtures::DequantizedSource deq(*src, head);
    const std::vector<Vec> want = reference(m, deq, toks);
    const std::vector<Vec> exact = reference(m, *src, toks);
    CpuWeightOptions w;
    w.int8 = true;
    w.int8_lm_head = head;
    auto b = make_cpu_backend(m, *src, 2, 0, 0.0, w);  // every loop split
    CHECK(std::string(b->dtype()) == "int8/fp32");
    const int k = 2;
    std::vector<float> got(size_t(k) * m.vocab);
    CHECK(b->forward(toks.data(), n_prompt, 0, k, got.data(), nullptr));
    double worst = 0;
    for (int r = 0; r < k; ++r)
      worst = std::max(worst, rel_err(got.data() + size_t(r) * m.vocab, want[n_prompt - k + r]));
    std::vector<float> step(m.vocab);
    b->reset();
    CHECK(b->forward(toks.data(), n_prompt - 3, 0, 1, step.data(), nullptr));
    for (int t = n_prompt - 3; t < n_prompt; ++t) {
      CHECK(b->forward(&toks[t], 1, t, 1, step.data(), nullptr));
      worst = std::max(worst, rel_err(step.data(), want[t]));
    }
    // Against the unquantized model the error is int8's, far above fp32's.
    const double vs_fp32 = rel_err(got.data() + size_t(k - 1) * m.vocab, exact[n_prompt - 1]);
    if (!(worst < 1e-5))
      check::fail(__FILE__, __LINE__, "int8 rel err " + std::to_string(worst));
    CHECK(vs_fp32 > 1e-4 && vs_fp32 < 5e-2);
    for (int threads : {1, 3}) {
      auto other = make_cpu_backend(m, *src, threads, 0, Parallel::kMinWork, w);
      std::vector<float> again(size_t(k) * m.vocab);
      other->forward(toks.data(), n_prompt, 0, k, again.data(), nullptr);
      CHECK(again == got);
    }
    std::printf("int8%s %u-layer %ux%u model, %d tokens: rel err %.2e vs the dequantized model, "
                "%.2e vs fp32 weights\n",
                head ? "+lm_head" : "", m.layers, m.hidden, m.intermediate, n_prompt, worst,
                vs_fp32);
  }
}

}  // namespace

TEST_CASE(model_shapes) {
  // Untied; down_proj depth 300 crosses the 256-deep GEMM pass; 300 positions
  // cross the 96-row, 256-key and 256-row MLP blocks; GQA group of 2.
  check_model(shape(300, 64, 300, 2, 4, 2, false, 1e6), 300, 1);
  // Tied; q/k/v rows (40 + 8 + 8) and vocab (250) not multiples of the
  // 16-wide panels; one KV head shared by 5 query heads.
  check_model(shape(250, 40, 72, 2, 5, 1, true, 10000), 70, 2);
}

TEST_CASE(batched_steps_match_each_sequence_alone) {
  check_batch(shape(300, 64, 300, 2, 4, 2, false, 1e6), 3);
  check_batch(shape(250, 40, 72, 2, 5, 1, true, 10000), 4);
}

TEST_CASE(int8_weights) {
  // The same two shapes with int8 weights (and an int8 lm_head).
  check_int8(shape(300, 64, 300, 2, 4, 2, false, 1e6), 120, 1);
  check_int8(shape(250, 40, 72, 2, 5, 1, true, 10000), 70, 2);
}

TEST_MAIN("test_forward")
