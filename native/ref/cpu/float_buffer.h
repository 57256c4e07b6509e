// A 64-byte aligned float array: SIMD loads of weights and caches never
// straddle cache lines. Contents are not preserved by resize().
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace lmdref {

class FloatBuffer {
 public:
  FloatBuffer() = default;
  ~FloatBuffer() { std::free(data_); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  FloatBuffer(FloatBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  FloatBuffer& operator=(FloatBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  // Grows to at least n floats; never shrinks.
  void reserve(size_t n) {
    if (n <= size_) return;
    void* p = nullptr;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) throw std::bad_alloc();
    std::free(data_);
    data_ = static_cast<float*>(p);
    size_ = n;
  }
  // Exactly n floats, all zero.
  void assign_zero(size_t n) {
    reserve(n);
    std::memset(data_, 0, n * sizeof(float));
  }

  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace lmdref
