// One host thread per GPU: the tensor-parallel ranks of one engine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lmdcu {

// run() hands every thread the same job (called with its rank, with the
// rank's device current), waits for all of them and rethrows the first
// failure as an Error naming the GPU. With one GPU there is no thread: the
// job runs on the caller's (two thread hand-offs less per decode step).
class Workers {
 public:
  explicit Workers(std::vector<int> devices);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  int size() const { return int(devices_.size()); }
  void run(const std::function<void(int)>& job);

 private:
  void loop(int rank);

  std::vector<int> devices_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<std::pair<int32_t, std::string>> errors_;
};

}  // namespace lmdcu
