// Device and pinned host memory that frees itself.
#pragma once

#include <cstddef>

#include "common.h"

namespace lmdcu {

// Device memory (cudaMalloc), freed with its owner.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() { release(); }
  void release() {
    if (p) cudaFree(p);
    p = nullptr;
    bytes = 0;
  }
  void alloc(size_t n) {
    release();
    if (n == 0) return;
    CU_CHECK(cudaMalloc(&p, n));
    bytes = n;
  }
  // Grows to at least n bytes; the old contents are lost.
  void reserve(size_t n) {
    if (n > bytes) alloc(n);
  }
};

// Pinned host memory (cudaHostAlloc), for asynchronous copies.
struct HostBuf {
  void* p = nullptr;
  size_t bytes = 0;
  HostBuf() = default;
  HostBuf(const HostBuf&) = delete;
  HostBuf& operator=(const HostBuf&) = delete;
  ~HostBuf() {
    if (p) cudaFreeHost(p);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (p) cudaFreeHost(p);
    p = nullptr;
    bytes = 0;
    CU_CHECK(cudaHostAlloc(&p, n, cudaHostAllocDefault));
    bytes = n;
  }
};

template <typename U, typename B> U* ptr(const B& b) { return static_cast<U*>(b.p); }

}  // namespace lmdcu
