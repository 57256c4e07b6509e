// The scheduler with a fake batching backend: a sequence that fails inside a
// step ends alone (the others go on), a step that fails as a whole ends only
// its sequences, chunk budgets hold, and sinks hear the end exactly once.
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "check.h"
#include "scheduler.h"

using namespace lmdref;

namespace {

constexpr uint32_t kVocab = 64;

// Token after position p of any sequence: (p + 1) mod vocab. A sequence
// whose prompt starts with 63 runs out of room at position 6; a step over
// more than 40 tokens fails as a whole once.
class FakeBatchBackend : public Backend {
 public:
  const char* name() const override { return "fake"; }
  const char* dtype() const override { return "fp32"; }
  bool forward(const int32_t*, int, int, int, float*, const std::atomic<bool>*) override { return false; }
  void reset() override {}
  int max_sequences() const override { return 4; }
  int open_sequence(int) override {
    std::lock_guard<std::mutex> lk(mu_);
    for (int s = 0; s < 4; ++s)
      if (!used_[s]) {
        used_[s] = true;
        first_[s] = -1;
        return s;
      }
    return -1;
  }
  void close_sequence(int slot) override {
    std::lock_guard<std::mutex> lk(mu_);
    used_[slot] = false;
  }
  bool step(const int32_t* tokens, const SeqStep* seqs, int n, const StepCancel&) override {
    int total = 0;
    for (int i = 0; i < n; ++i) {
      if (seqs[i].pos == 0) first_[seqs[i].slot] = tokens[total];
      if (first_[seqs[i].slot] == 63 && seqs[i].pos + seqs[i].n > 6)
        throw SequenceError(seqs[i].slot, "no room left for this sequence");
      total += seqs[i].n;
    }
    max_step_ = std::max(max_step_.load(), total);
    if (total > 40 && fail_big_ && !failed_once_) {
      failed_once_ = true;
      throw std::runtime_error("the device fell over");
    }
    for (int i = 0; i < n; ++i) {
      if (!seqs[i].logits) continue;
      for (uint32_t v = 0; v < kVocab; ++v) seqs[i].logits[v] = 0;
      seqs[i].logits[(seqs[i].pos + seqs[i].n) % kVocab] = 1;
    }
    ++steps_;
    return true;
  }
  int steps_ = 0;
  std::atomic<int> max_step_{0};
  bool fail_big_ = false, failed_once_ = false;

 private:
  std::mutex mu_;
  bool used_[4] = {false, false, false, false};
  int32_t first_[4] = {-1, -1, -1, -1};
};

struct Sink : SequenceSink {
  std::vector<int32_t> ids;
  std::atomic<int> count{0};
  SequenceEnd end;
  int ends = 0;
  void on_token(int32_t id, uint32_t, int64_t, float, const float*) override {
    ids.push_back(id);
    ++count;
  }
  void on_end(const SequenceEnd& e) override {
    end = e;
    ++ends;
  }
};

std::shared_ptr<SequenceLink> link(int32_t first, int prompt_len, uint32_t max_new, Sink* sink) {
  RequestSpec r;
  r.prompt.assign(prompt_len, 1);
  r.prompt[0] = first;
  r.max_new_tokens = max_new;
  Clamp c;
  c.requested = c.effective = max_new;
  return std::make_shared<SequenceLink>(r, c, sink);
}

}  // namespace

TEST_CASE(scheduler_with_a_fake_backend) {
  ModelConfig m;
  m.vocab = kVocab;
  FakeBatchBackend b;
  SchedulerOptions o;
  o.max_sequences = 4;
  o.step_tokens = 16;
  o.prefill_tokens = 64;
  {
    Scheduler sched(&b, m, {}, o);
    // Three requests; the second runs out of room after its 6th position.
    Sink s0, s1, s2;
    auto l0 = link(5, 4, 10, &s0);
    auto l1 = link(63, 3, 10, &s1);
    auto l2 = link(7, 20, 10, &s2);
    sched.submit({l0, l1, l2});
    l0->wait_released();
    l1->wait_released();
    l2->wait_released();
    CHECK_EQ(s1.ends, 1);
    CHECK_EQ(s1.end.decision.finish, LMD_FINISH_ERROR);
    CHECK(s1.end.detail.find("no room") != std::string::npos);
    CHECK_EQ(s1.ids.size(), size_t(4));  // tokens after positions 2 to 5, then out of room
    for (Sink* s : {&s0, &s2}) {
      CHECK_EQ(s->ends, 1);
      CHECK_EQ(s->end.decision.finish, LMD_FINISH_LENGTH);
      CHECK_EQ(s->ids.size(), size_t(10));
    }
    CHECK_EQ(s0.ids[0], 4);   // after its 4-token prompt
    CHECK_EQ(s2.ids[0], 20);
    CHECK_EQ(s2.ids[9], 29);
    CHECK(s0.end.t_scheduled_ns > 0 && s0.end.max_batch == 3);
    CHECK(b.max_step_ <= 64);

    // A whole step fails: its sequences end with the error, the next request runs.
    b.fail_big_ = true;
    Sink big1, big2, after;
    auto lb1 = link(9, 30, 4, &big1);
    auto lb2 = link(9, 30, 4, &big2);
    sched.submit({lb1, lb2});
    lb1->wait_released();
    lb2->wait_released();
    CHECK(b.failed_once_);
    CHECK_EQ(big1.end.decision.finish, LMD_FINISH_ERROR);
    CHECK(big1.end.detail.find("fell over") != std::string::npos);
    auto la = link(9, 30, 4, &after);
    sched.submit({la});
    la->wait_released();
    CHECK_EQ(after.end.decision.finish, LMD_FINISH_LENGTH);
    b.fail_big_ = false;

    // While one decodes, a joining prompt is cut to the step budget.
    Sink run, join;
    auto lr = link(2, 2, 1000000, &run);
    sched.submit({lr});
    while (run.count.load() == 0) std::this_thread::yield();
    b.max_step_ = 0;
    auto lj = link(3, 100, 2, &join);
    sched.submit({lj});
    lj->wait_released();
    CHECK(b.max_step_ <= 16);
    CHECK_EQ(join.ids.size(), size_t(2));
    lr->cancel = true;
    sched.poke();
    lr->wait_released();
    CHECK_EQ(run.end.decision.finish, LMD_FINISH_CANCELLED);

    // Stopping ends what is left, and later submissions end at once.
    Sink late;
    sched.stop();
    auto ll = link(1, 2, 3, &late);
    sched.submit({ll});
    CHECK(ll->released());
    CHECK_EQ(late.end.decision.finish, LMD_FINISH_CANCELLED);
  }
}

// A request waiting for room (the backend holds 4) that is cancelled ends at
// once, though the ones before it in line still run.
TEST_CASE(cancel_while_waiting_for_room) {
  ModelConfig m;
  m.vocab = kVocab;
  FakeBatchBackend b;
  SchedulerOptions o;
  o.max_sequences = 8;
  Scheduler sched(&b, m, {}, o);
  Sink s[5];
  std::vector<std::shared_ptr<SequenceLink>> links;
  for (int i = 0; i < 5; ++i) links.push_back(link(2, 2, 1000000, &s[i]));
  sched.submit(links);
  while (s[0].count.load() == 0) std::this_thread::yield();
  CHECK(!links[4]->released());
  links[4]->cancel = true;
  sched.poke();
  links[4]->wait_released();
  CHECK_EQ(s[4].end.decision.finish, LMD_FINISH_CANCELLED);
  CHECK_EQ(s[4].count.load(), 0);
  CHECK(!links[0]->released());
  sched.stop();
  for (int i = 0; i < 4; ++i) CHECK_EQ(s[i].end.decision.finish, LMD_FINISH_CANCELLED);
}

TEST_MAIN("test_scheduler")
