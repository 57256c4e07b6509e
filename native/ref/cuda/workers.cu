#include "workers.h"

#include <new>

#include "common.h"

namespace lmdcu {

Workers::Workers(std::vector<int> devices) : devices_(std::move(devices)) {
  errors_.resize(devices_.size());
  if (devices_.size() == 1) return;  // run() calls the job on the caller's thread
  for (size_t r = 0; r < devices_.size(); ++r) threads_.emplace_back([this, r] { loop(int(r)); });
}

Workers::~Workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Workers::run(const std::function<void(int)>& job) {
  if (devices_.size() == 1) {
    // One GPU: the job runs on the calling thread, without two hand-offs
    // between threads on every step.
    try {
      CU_CHECK(cudaSetDevice(devices_[0]));
      job(0);
    } catch (const Error& e) {
      throw Error(e.code(), "GPU " + std::to_string(devices_[0]) + ": " + e.what());
    } catch (const std::bad_alloc&) {
      throw Error(LMD_ERR_NOMEM, "GPU " + std::to_string(devices_[0]) + ": out of host memory");
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &job;
    pending_ = size();
    for (auto& e : errors_) e = {0, ""};
    ++generation_;
  }
  cv_.notify_all();
  std::unique_lock<std::mutex> lk(mu_);
  done_cv_.wait(lk, [&] { return pending_ == 0; });
  job_ = nullptr;
  for (auto& e : errors_)
    if (e.first) throw Error(e.first, e.second);
}

void Workers::loop(int rank) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    std::pair<int32_t, std::string> err{0, ""};
    try {
      CU_CHECK(cudaSetDevice(devices_[rank]));
      (*job)(rank);
    } catch (const Error& e) {
      err = {e.code(), e.what()};
    } catch (const std::bad_alloc&) {
      err = {LMD_ERR_NOMEM, "out of host memory"};
    } catch (const std::exception& e) {
      err = {LMD_ERR_ENGINE, e.what()};
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (err.first)
        errors_[rank] = {err.first, "GPU " + std::to_string(devices_[rank]) + ": " + err.second};
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
}

}  // namespace lmdcu
