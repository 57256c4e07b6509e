#include "cpu/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#ifdef LMDREF_OPENMP
#include <omp.h>
#endif

namespace lmdref {

namespace {

void run_range(int part, int parts, int64_t n, const std::function<void(int64_t, int64_t)>& fn,
               std::mutex& m, std::exception_ptr& err) {
  const int64_t b = n * part / parts, e = n * (part + 1) / parts;
  if (b >= e) return;
  try {
    fn(b, e);
  } catch (...) {
    std::lock_guard<std::mutex> lk(m);
    if (!err) err = std::current_exception();
  }
}

}  // namespace

int Parallel::parts(int64_t n, double work) const {
  int64_t p = std::min<int64_t>(threads_, n);
  if (min_work_ > 0) {
    const double paid = work / min_work_;
    if (paid < double(p)) p = static_cast<int64_t>(paid);
  }
  return static_cast<int>(std::max<int64_t>(1, p));
}

#ifdef LMDREF_OPENMP

struct Parallel::Pool {};

Parallel::Parallel(int threads, double min_work)
    : threads_(std::max(1, threads)), min_work_(min_work) {}
Parallel::~Parallel() = default;

void Parallel::for_range(int64_t n, double work,
                         const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int parts = this->parts(n, work);
  if (parts == 1) {
    fn(0, n);
    return;
  }
  std::mutex m;
  std::exception_ptr err;
#pragma omp parallel num_threads(parts)
  {
    // The runtime may grant fewer threads than asked for; split by what we got.
    run_range(omp_get_thread_num(), omp_get_num_threads(), n, fn, m, err);
  }
  if (err) std::rethrow_exception(err);
}

#else

// Workers sleep on a condition variable between jobs; job k of the calling
// thread's request is range k + 1 (the caller runs range 0 itself).
struct Parallel::Pool {
  std::mutex m;
  std::condition_variable wake, finished;
  std::vector<std::thread> workers;
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int parts = 0;
  uint64_t generation = 0;
  int pending = 0;
  bool stop = false;
  std::mutex err_m;
  std::exception_ptr err;

  void work(int id) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lk(m);
      wake.wait(lk, [&] { return stop || generation != seen; });
      if (stop) return;
      seen = generation;
      const int parts_now = parts;
      const int64_t n_now = n;
      const auto* f = fn;
      lk.unlock();
      if (id + 1 < parts_now) run_range(id + 1, parts_now, n_now, *f, err_m, err);
      lk.lock();
      if (--pending == 0) finished.notify_one();
    }
  }
};

Parallel::Parallel(int threads, double min_work)
    : threads_(std::max(1, threads)), min_work_(min_work), pool_(new Pool) {
  for (int i = 0; i + 1 < threads_; ++i) pool_->workers.emplace_back([this, i] { pool_->work(i); });
}

Parallel::~Parallel() {
  {
    std::lock_guard<std::mutex> lk(pool_->m);
    pool_->stop = true;
  }
  pool_->wake.notify_all();
  for (auto& t : pool_->workers) t.join();
}

void Parallel::for_range(int64_t n, double work,
                         const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int parts = this->parts(n, work);
  if (parts == 1) {
    fn(0, n);
    return;
  }
  Pool& p = *pool_;
  {
    std::lock_guard<std::mutex> lk(p.m);
    p.fn = &fn;
    p.n = n;
    p.parts = parts;
    p.err = nullptr;
    p.pending = static_cast<int>(p.workers.size());
    ++p.generation;
  }
  p.wake.notify_all();
  run_range(0, parts, n, fn, p.err_m, p.err);
  std::unique_lock<std::mutex> lk(p.m);
  p.finished.wait(lk, [&] { return p.pending == 0; });
  if (p.err) std::rethrow_exception(p.err);
}

#endif

}  // namespace lmdref
