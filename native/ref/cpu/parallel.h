// Splits loops over the CPU backend's threads: OpenMP where the build found it,
// else a small pool of std::threads owned by the backend.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace lmdref {

class Parallel {
 public:
  explicit Parallel(int threads);
  ~Parallel();
  Parallel(const Parallel&) = delete;
  Parallel& operator=(const Parallel&) = delete;

  int threads() const { return threads_; }

  // Calls fn(begin, end) on disjoint contiguous ranges that cover [0, n), at
  // most one per thread, and returns when all are done. An exception thrown by
  // fn is rethrown here after every range finished.
  void for_range(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  int threads_;
  struct Pool;
  std::unique_ptr<Pool> pool_;  // only without OpenMP
};

}  // namespace lmdref
