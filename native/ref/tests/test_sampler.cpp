// Sampling: greedy ties, determinism per seed, and the temperature → top-k →
// top-p pipeline against frequencies and brute-force nuclei.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "check.h"
#include "random_weights.h"
#include "sampler.h"

using namespace lmdref;

static std::vector<int32_t> draw(const SamplingParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p, uint32_t(logits.size()));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.pick(logits.data()));
  return out;
}

static std::vector<double> freqs(const SamplingParams& p, const std::vector<float>& logits, int n) {
  std::vector<double> f(logits.size());
  for (int32_t id : draw(p, logits, n)) f[id] += 1.0 / n;
  return f;
}

TEST_CASE(sampling) {
  // Greedy: the first maximum wins.
  std::vector<float> tie = {0.5f, 2.0f, -1.0f, 2.0f};
  CHECK_EQ(draw({}, tie, 1)[0], 1);
  CHECK_EQ(argmax(tie.data(), 4), 1);
  CHECK(std::fabs(log_sum_exp(tie.data(), 4) -
                  std::log(std::exp(0.5) + 2 * std::exp(2.0) + std::exp(-1.0))) < 1e-12);

  const std::vector<float> three = {std::log(1.0f), std::log(2.0f), std::log(7.0f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  // Same seed, same tokens; another seed, another sequence.
  CHECK(draw(p, three, 200) == draw(p, three, 200));
  SamplingParams q = p;
  q.seed = 43;
  CHECK(draw(p, three, 200) != draw(q, three, 200));

  const int n = 40000;
  std::vector<double> f = freqs(p, three, n);
  CHECK(std::fabs(f[0] - 0.1) < 0.01 && std::fabs(f[1] - 0.2) < 0.01 && std::fabs(f[2] - 0.7) < 0.01);

  // Temperature 2 flattens: weights 1, sqrt 2, sqrt 7.
  SamplingParams hot = p;
  hot.temperature = 2.0f;
  f = freqs(hot, three, n);
  const double z = 1 + std::sqrt(2.0) + std::sqrt(7.0);
  CHECK(std::fabs(f[0] - 1 / z) < 0.01 && std::fabs(f[2] - std::sqrt(7.0) / z) < 0.01);

  SamplingParams k2 = p;
  k2.top_k = 2;
  f = freqs(k2, three, n);
  CHECK(f[0] == 0 && std::fabs(f[1] - 2.0 / 9) < 0.01);

  SamplingParams k1 = p;
  k1.top_k = 1;
  f = freqs(k1, three, 1000);
  CHECK(f[2] > 0.9999);

  SamplingParams nucleus = p;
  nucleus.top_p = 0.75f;  // sorted: 0.7 (< 0.75), then 0.2 reaches it
  f = freqs(nucleus, three, n);
  CHECK(f[0] == 0 && std::fabs(f[1] - 2.0 / 9) < 0.01);
  nucleus.top_p = 0.5f;
  f = freqs(nucleus, three, 1000);
  CHECK(f[2] > 0.9999);

  // A large vocabulary exercises the incremental sort: every draw lies in
  // the brute-force nucleus.
  const uint32_t V = 20000;
  std::vector<float> big(V);
  for (uint32_t i = 0; i < V; ++i) big[i] = float(splitmix64(i) >> 40) / 16777216.0f * 8.0f;
  SamplingParams wide;
  wide.temperature = 0.7f;
  wide.top_p = 0.9f;
  wide.seed = 7;
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return big[a] > big[b] || (big[a] == big[b] && a < b);
  });
  std::vector<double> w(V);
  double total = 0;
  for (uint32_t i = 0; i < V; ++i) total += (w[i] = std::exp((big[order[i]] - big[order[0]]) / 0.7));
  std::vector<char> inside(V, 0);
  double mass = 0;
  for (uint32_t i = 0; i < V && mass < 0.9 * total; ++i) {
    mass += w[i];
    inside[order[i]] = 1;
  }
  const size_t nucleus_size = std::count(inside.begin(), inside.end(), 1);
  CHECK(nucleus_size > 64);  // beyond the first sorted chunk
  for (int32_t id : draw(wide, big, 300))
    if (!inside[id]) check::fail(__FILE__, __LINE__, "drew " + std::to_string(id) + " outside the nucleus");
  // top_k and top_p together: top_k first.
  wide.top_k = 10;
  for (int32_t id : draw(wide, big, 300))
    if (std::find(order.begin(), order.begin() + 10, id) == order.begin() + 10)
      check::fail(__FILE__, __LINE__, "drew " + std::to_string(id) + " outside the top 10");
}

TEST_MAIN("test_sampler")
