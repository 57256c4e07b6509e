// Splits loops over the CPU backend's threads: OpenMP where the build found it,
// else a small pool of std::threads owned by the backend. Each loop uses as
// many threads as its work pays for.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace lmdref {

class Parallel {
 public:
  // Work (in units of about one multiply-add, or one element of an
  // element-wise pass) that pays for one more thread: about a millisecond of
  // one core on a memory-bound loop. Below it, waking a thread and waiting
  // for it costs more than it saves, and on a host whose cores are shared a
  // helper preempted by another process can cost a whole time slice: a
  // decode step of the small presets (a 152k-row lm_head, tiny layers) stays
  // on one thread, prefills split (docs/ref-engine.md, "Threads").
  static constexpr double kMinWork = 1 << 23;

  // min_work: the work that pays for one more thread (kMinWork; tests pass 0
  // to split every loop, so that the threaded paths run on tiny shapes).
  explicit Parallel(int threads, double min_work = kMinWork);
  ~Parallel();
  Parallel(const Parallel&) = delete;
  Parallel& operator=(const Parallel&) = delete;

  int threads() const { return threads_; }

  // Calls fn(begin, end) on disjoint contiguous ranges that cover [0, n), one
  // per thread that `work` pays for (parts(n, work)), and returns when all
  // are done. An exception thrown by fn is rethrown here after every range
  // finished.
  void for_range(int64_t n, double work, const std::function<void(int64_t, int64_t)>& fn);

  // The ranges for_range cuts n items of total `work` into: at most
  // threads() and n, at least 1, one per min_work.
  int parts(int64_t n, double work) const;

 private:
  int threads_;
  double min_work_;
  struct Pool;
  std::unique_ptr<Pool> pool_;  // only without OpenMP
};

}  // namespace lmdref
