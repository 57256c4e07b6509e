// The next-token step of the generation loop with a fake backend: the greedy
// choice made by the backend (as the CUDA backend makes it on its GPUs) must
// give the host path's tokens, logprobs and watched logprobs, and is used only
// for greedy decoding on a backend that offers it.
#include <cmath>
#include <limits>
#include <vector>

#include "check.h"
#include "next_token.h"

using namespace lmdref;

namespace {

// A backend whose logits at step i are a fixed function of (i, id), and which
// can also answer forward_greedy by reducing them itself, in fp32 partial
// sums as a device would.
class FakeLogitsBackend : public Backend {
 public:
  FakeLogitsBackend(uint32_t vocab, bool offers_choice) : vocab_(vocab), offers_(offers_choice) {}
  const char* name() const override { return "fake"; }
  const char* dtype() const override { return "fp32"; }

  static float logit(int step, uint32_t id) {
    // Ties on purpose: ids 3 and 7 share the maximum at even steps.
    if (step % 2 == 0 && (id == 3 || id == 7)) return 4.0f;
    return std::sin(0.37f * float(id) + 1.3f * float(step)) * 3.0f;
  }

  bool forward(const int32_t*, int, int, int n_logits, float* logits,
               const std::atomic<bool>*) override {
    ++host_forwards;
    for (uint32_t v = 0; v < vocab_; ++v) logits[(n_logits - 1) * vocab_ + v] = logit(step_, v);
    ++step_;
    return true;
  }

  bool chooses_greedy() const override { return offers_; }

  bool forward_greedy(const int32_t*, int, int, const int32_t* watch, int n_watch,
                      float* watch_logits, GreedyChoice* choice,
                      const std::atomic<bool>*) override {
    ++device_forwards;
    float mx = -INFINITY, sum = 0.f;
    int32_t best = -1;
    for (uint32_t v = 0; v < vocab_; ++v) {
      const float x = logit(step_, v);
      if (x > mx) {
        sum = sum * std::exp(mx - x) + 1.f;
        mx = x;
        best = int32_t(v);
      } else {
        sum += std::exp(x - mx);
      }
    }
    choice->id = best;
    choice->logit = mx;
    choice->log_sum_exp = double(mx) + std::log(double(sum));
    for (int w = 0; w < n_watch; ++w) watch_logits[w] = logit(step_, uint32_t(watch[w]));
    ++step_;
    return true;
  }

  void reset() override { step_ = 0; }

  int host_forwards = 0, device_forwards = 0;

 private:
  uint32_t vocab_;
  bool offers_;
  int step_ = 0;
};

struct Steps {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<std::vector<float>> watch;
};

Steps run(Backend& b, const RequestSpec& g, uint32_t vocab, int n) {
  NextToken next(b, g, vocab);
  Steps s;
  const int32_t prompt[2] = {1, 2};
  next.forward(prompt, 2, 0, nullptr);
  for (int i = 0; i < n; ++i) {
    const int32_t id = next.choose();
    std::vector<float> w(g.watch_ids.size());
    s.ids.push_back(id);
    s.logprobs.push_back(next.report(id, w.data()));
    s.watch.push_back(w);
    next.forward(&id, 1, 2 + i, nullptr);
  }
  return s;
}

}  // namespace

TEST_CASE(next_token_paths) {
  const uint32_t vocab = 1000;
  RequestSpec g;
  g.want_logprobs = true;
  g.watch_ids = {0, 7, 999};

  // Greedy on a backend that offers the choice: the backend's path is used
  // and agrees with the host's (first maximum on ties: 3, not 7).
  FakeLogitsBackend host(vocab, false), device(vocab, true);
  const Steps h = run(host, g, vocab, 6), d = run(device, g, vocab, 6);
  CHECK_EQ(host.device_forwards, 0);
  CHECK_EQ(device.host_forwards, 0);
  CHECK_EQ(device.device_forwards, 7);
  CHECK(h.ids == d.ids);
  CHECK_EQ(h.ids[0], 3);
  for (size_t i = 0; i < h.ids.size(); ++i) {
    CHECK(std::fabs(h.logprobs[i] - d.logprobs[i]) < 1e-5f);
    CHECK(h.logprobs[i] < 0.f);
    for (size_t w = 0; w < g.watch_ids.size(); ++w)
      CHECK(std::fabs(h.watch[i][w] - d.watch[i][w]) < 1e-5f);
  }

  // Sampling with a temperature always takes the logits row to the host.
  RequestSpec t = g;
  t.temperature = 0.8f;
  t.seed = 5;
  FakeLogitsBackend sampled(vocab, true);
  run(sampled, t, vocab, 3);
  CHECK_EQ(sampled.device_forwards, 0);
  CHECK_EQ(sampled.host_forwards, 4);

  // Without logprobs nothing is reported, on either path.
  RequestSpec quiet = g;
  quiet.want_logprobs = false;
  FakeLogitsBackend dq(vocab, true);
  const Steps q = run(dq, quiet, vocab, 2);
  CHECK(std::isnan(q.logprobs[0]) && std::isnan(q.watch[0][1]));
  CHECK(q.ids == std::vector<int32_t>(h.ids.begin(), h.ids.begin() + 2));
}

TEST_MAIN("test_next_token")
