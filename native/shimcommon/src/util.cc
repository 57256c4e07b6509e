#include "lmdrive_shim/util.h"

#include <sys/stat.h>
#include <time.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lmdrive::shim {

int64_t now_ns() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int64_t steady_ns_to_monotonic(int64_t steady_ns) noexcept {
  // libstdc++ implements std::chrono::steady_clock with
  // clock_gettime(CLOCK_MONOTONIC), and its epoch is the clock's zero, so a
  // steady_clock time_since_epoch() in ns is already a CLOCK_MONOTONIC value.
  return steady_ns;
}

void fail(int32_t code, const std::string& msg) { throw ShimError(code, msg); }

std::string strf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out;
  if (n > 0) {
    out.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(&out[0], out.size(), fmt, ap2);
    out.resize(static_cast<size_t>(n));
  }
  va_end(ap2);
  return out;
}

void copy_cstr(char* dst, size_t cap, const std::string& src) noexcept {
  if (!dst || cap == 0) return;
  size_t n = src.size();
  if (n >= cap) {
    n = cap - 1;
    // Step back over UTF-8 continuation bytes so no character is split.
    while (n > 0 && (static_cast<unsigned char>(src[n]) & 0xC0) == 0x80) --n;
  }
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

void set_error(lmd_error* err, int32_t code, const std::string& msg) noexcept {
  if (!err) return;
  const size_t size = err->struct_size;
  if (size >= offsetof(lmd_error, code) + sizeof(int32_t)) err->code = code;
  if (size > offsetof(lmd_error, message)) {
    size_t cap = size - offsetof(lmd_error, message);
    if (cap > sizeof(err->message)) cap = sizeof(err->message);
    copy_cstr(err->message, cap, msg);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(LMD_ERR_INVALID, "cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) noexcept {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace lmdrive::shim
