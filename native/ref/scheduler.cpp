#include "scheduler.h"

#include <algorithm>
#include <limits>
#include <new>
#include <optional>

#include "next_token.h"

namespace lmdref {

void SequenceLink::wait_released() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return released_; });
}

bool SequenceLink::released() const {
  std::lock_guard<std::mutex> lk(mu_);
  return released_;
}

void SequenceLink::release() {
  std::lock_guard<std::mutex> lk(mu_);
  sink_ = nullptr;
  released_ = true;
  cv_.notify_all();
}

// One sequence in the batch: its request, where it stands, what it chose.
struct Scheduler::Seq {
  std::shared_ptr<SequenceLink> link;
  int slot = -1;          // backend slot; -1 in calibrate mode
  int fed = 0;            // prompt tokens already in the cache
  std::vector<int32_t> out;
  std::optional<NextToken> next;
  std::optional<StopRules> rules;
  std::vector<float> watch;
  SequenceEnd end;
  double batch_sum = 0;
  uint32_t emitted = 0;

  const RequestSpec& spec() const { return link->req; }
  int prompt() const { return static_cast<int>(link->req.prompt.size()); }
  bool prefilling() const { return fed < prompt(); }
  bool cancelled() const { return link->cancel.load(std::memory_order_relaxed); }
};

namespace {

// Adds a step's device time to *sum; stays -1 while the backend reports none.
void add_device_time(int64_t t, int64_t* sum) {
  if (t < 0) return;
  *sum = (*sum < 0 ? 0 : *sum) + t;
}

}  // namespace

Scheduler::Scheduler(Backend* backend, const ModelConfig& model, std::vector<int32_t> eos_ids,
                     SchedulerOptions opt)
    : backend_(backend), vocab_(model.vocab), eos_(std::move(eos_ids)), opt_(opt) {
  opt_.max_sequences = std::max(1, opt_.max_sequences);
  opt_.step_tokens = std::max(1, opt_.step_tokens);
  opt_.prefill_tokens = std::max(opt_.step_tokens, opt_.prefill_tokens);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::submit(const std::vector<std::shared_ptr<SequenceLink>>& links) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stopping_) {
      waiting_.insert(waiting_.end(), links.begin(), links.end());
      ++changes_;
      cv_.notify_all();
      return;
    }
  }
  // The engine is going away: the sequences end before they begin.
  for (const auto& l : links) {
    SequenceEnd e;
    e.decision.finish = LMD_FINISH_CANCELLED;
    e.detail = "the engine was destroyed";
    l->sink_->on_end(e);
    l->release();
  }
}

void Scheduler::poke() {
  std::lock_guard<std::mutex> lk(mu_);
  ++changes_;
  cv_.notify_all();
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::finish(Seq& s, StopDecision d, const std::string& detail) {
  if (s.slot >= 0 && backend_) backend_->close_sequence(s.slot);
  s.slot = -1;
  s.end.decision = d;
  if (!detail.empty()) s.end.detail = detail;
  if (!backend_ && s.end.detail.empty()) s.end.detail = "calibrate mode: no model compute, token i is i mod vocab";
  if (s.rules) s.end.single_stop_ids = s.rules->single_stop_ids();
  if (s.emitted > 0) s.end.mean_batch = s.batch_sum / s.emitted;
  s.link->sink_->on_end(s.end);
  s.link->release();
}

// Takes waiting sequences into the batch while there are places and room:
// cancelled ones end at once; the rest of a batch that does not fit waits.
void Scheduler::admit(std::vector<std::unique_ptr<Seq>>& ended) {
  // A request cancelled while it waits ends now, wherever it is in line.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (!(*it)->cancel.load()) {
      ++it;
      continue;
    }
    auto s = std::make_unique<Seq>();
    s->link = *it;
    s->end.decision.finish = LMD_FINISH_CANCELLED;
    ended.push_back(std::move(s));
    it = waiting_.erase(it);
  }
  while (!waiting_.empty() && int(active_.size()) < opt_.max_sequences) {
    std::shared_ptr<SequenceLink> link = waiting_.front();
    auto s = std::make_unique<Seq>();
    s->link = link;
    if (!link->cancel.load()) {
      if (backend_) {
        const int positions = static_cast<int>(link->req.prompt.size() + link->clamp.effective);
        try {
          s->slot = backend_->open_sequence(positions);
        } catch (const std::exception& e) {
          s->end.detail = e.what();
          s->end.decision.finish = LMD_FINISH_ERROR;
          waiting_.pop_front();
          ended.push_back(std::move(s));
          continue;
        }
        if (s->slot < 0) break;  // no room until a sequence ends
      }
    }
    waiting_.pop_front();
    if (link->cancel.load()) {
      s->end.decision.finish = LMD_FINISH_CANCELLED;
      ended.push_back(std::move(s));
      continue;
    }
    active_.push_back(std::move(s));
  }
}

void Scheduler::loop() {
  uint64_t seen = 0;
  bool retry = false;  // a sequence ended: waiting ones may fit now
  for (;;) {
    std::vector<std::unique_ptr<Seq>> ended;
    bool stopping;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !active_.empty() || changes_ != seen || retry; });
      seen = changes_;
      retry = false;
      stopping = stopping_;
      if (stopping) {
        for (auto& l : waiting_) {
          auto q = std::make_unique<Seq>();
          q->link = l;
          q->end.decision.finish = LMD_FINISH_CANCELLED;
          q->end.detail = "the engine was destroyed";
          ended.push_back(std::move(q));
        }
        waiting_.clear();
      } else {
        admit(ended);
      }
    }
    for (auto& q : ended) finish(*q, q->end.decision, "");
    if (stopping) {
      for (auto& q : active_) finish(*q, StopDecision{LMD_FINISH_CANCELLED, -1, -1}, "the engine was destroyed");
      active_.clear();
      return;
    }
    const size_t before = active_.size();
    if (before > 0) step();
    retry = active_.size() < before;
  }
}

void Scheduler::step() {
  // Cancelled sequences leave before the step.
  for (auto& s : active_)
    if (s->cancelled()) {
      finish(*s, StopDecision{LMD_FINISH_CANCELLED, -1, -1}, "");
      s->link.reset();
    }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const std::unique_ptr<Seq>& s) { return !s->link; }),
                active_.end());
  if (active_.empty()) return;

  // First step of a sequence: its chooser, stop rules and scheduled time.
  for (auto& s : active_) {
    if (s->rules) continue;
    const RequestSpec& g = s->spec();
    const Clamp& c = s->link->clamp;
    s->rules.emplace(eos_, g.ignore_eos, g.min_new_tokens, g.stops, c.requested, c.effective);
    if (backend_) s->next.emplace(*backend_, g, vocab_);
    s->watch.assign(g.watch_ids.size(), std::numeric_limits<float>::quiet_NaN());
    s->out.reserve(std::min<uint32_t>(c.effective, 1u << 20));
    s->end.t_scheduled_ns = now_ns();
  }

  // What each sequence gets this step: one token while decoding, a chunk of
  // its prompt while prefilling, within the step's budget.
  int decoding = 0;
  for (auto& s : active_) decoding += s->prefilling() ? 0 : 1;
  int budget = decoding > 0 ? std::max(opt_.step_tokens - decoding, opt_.step_tokens / 4)
                            : opt_.prefill_tokens;
  std::vector<Seq*> in_step;
  std::vector<SeqStep> steps;
  std::vector<int32_t> tokens;
  std::vector<bool> prefill_step;
  for (auto& s : active_) {
    SeqStep st;
    st.slot = s->slot;
    // A prompt chunk starts where the last one ended; a decoding sequence
    // feeds its newest token, at position prompt + index.
    st.pos = s->prefilling() ? s->fed : s->prompt() + static_cast<int>(s->out.size()) - 1;
    if (s->prefilling()) {
      const int left = s->prompt() - s->fed;
      // Alone, a prompt is never cut: the first one is taken whole.
      int n = (decoding == 0 && in_step.empty()) ? left : std::min(left, budget);
      if (n <= 0) continue;
      budget -= n;
      st.n = n;
      tokens.insert(tokens.end(), s->spec().prompt.begin() + s->fed,
                    s->spec().prompt.begin() + s->fed + n);
    } else {
      st.n = 1;
      tokens.push_back(s->out.back());
    }
    if (!s->prefilling() || s->fed + st.n == s->prompt())
      if (s->next) s->next->bind(st);
    prefill_step.push_back(s->prefilling());
    in_step.push_back(s.get());
    steps.push_back(st);
  }
  const int n = static_cast<int>(steps.size());

  // The step itself. A sequence that cannot go on leaves and the step runs
  // again without it; any other failure ends every sequence of the step.
  bool ran = true;
  while (backend_ && n > 0) {
    std::vector<const std::atomic<bool>*> flags;
    for (Seq* s : in_step)
      if (s) flags.push_back(&s->link->cancel);
    std::vector<SeqStep> live;
    std::vector<int32_t> live_tokens;
    size_t at = 0;
    for (int i = 0; i < n; ++i) {
      if (in_step[i]) {
        live.push_back(steps[i]);
        live_tokens.insert(live_tokens.end(), tokens.begin() + at, tokens.begin() + at + steps[i].n);
      }
      at += steps[i].n;
    }
    if (live.empty()) break;
    try {
      ran = backend_->step(live_tokens.data(), live.data(), int(live.size()),
                           StepCancel{flags.data(), int(flags.size())});
      break;
    } catch (const SequenceError& e) {
      for (int i = 0; i < n; ++i)
        if (in_step[i] && in_step[i]->slot == e.slot()) {
          finish(*in_step[i], StopDecision{LMD_FINISH_ERROR, -1, -1}, e.what());
          in_step[i]->link.reset();
          in_step[i] = nullptr;
        }
    } catch (const std::bad_alloc&) {
      for (Seq* s : in_step)
        if (s) {
          finish(*s, StopDecision{LMD_FINISH_ERROR, -1, -1}, "out of host memory during generation");
          s->link.reset();
        }
      in_step.assign(n, nullptr);
    } catch (const std::exception& e) {
      for (Seq* s : in_step)
        if (s) {
          finish(*s, StopDecision{LMD_FINISH_ERROR, -1, -1}, e.what());
          s->link.reset();
        }
      in_step.assign(n, nullptr);
    }
  }
  const int64_t device_ns = backend_ ? backend_->last_device_ns() : -1;
  if (!ran) {  // every sequence of the step was cancelled meanwhile
    for (Seq* s : in_step)
      if (s) {
        finish(*s, StopDecision{LMD_FINISH_CANCELLED, -1, -1}, "");
        s->link.reset();
      }
    in_step.assign(n, nullptr);
  }

  // Next tokens, in the order of the batch.
  const uint32_t batch = static_cast<uint32_t>(std::count_if(in_step.begin(), in_step.end(), [](Seq* s) { return s; }));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int i = 0; i < n; ++i) {
    Seq* s = in_step[i];
    if (!s) continue;
    add_device_time(device_ns, prefill_step[i] ? &s->end.device_prefill_ns : &s->end.device_decode_ns);
    s->fed = std::min(s->fed + steps[i].n, s->prompt());
    if (s->prefilling()) continue;
    try {
      const uint32_t index = static_cast<uint32_t>(s->out.size());
      const int32_t id = s->next ? s->next->choose() : static_cast<int32_t>(index % vocab_);
      const int64_t t = now_ns();  // the token is known on the host from here on
      const float logprob = s->next ? s->next->report(id, s->watch.data()) : nan;
      s->link->sink_->on_token(id, index, t, logprob, s->watch.data());
      s->out.push_back(id);
      s->batch_sum += batch;
      s->emitted++;
      s->end.max_batch = std::max(s->end.max_batch, batch);
      const StopDecision d = s->rules->check(s->out, s->cancelled());
      if (d.finish != LMD_FINISH_NONE) {
        finish(*s, d, "");
        s->link.reset();
      }
    } catch (const std::exception& e) {
      finish(*s, StopDecision{LMD_FINISH_ERROR, -1, -1}, e.what());
      s->link.reset();
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const std::unique_ptr<Seq>& s) { return !s->link; }),
                active_.end());
}

}  // namespace lmdref
