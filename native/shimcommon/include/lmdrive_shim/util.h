// Small helpers shared by the shims: the clock, the error type used inside a
// shim, and safe copies into the fixed-size char arrays of lmdrive.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "lmdrive.h"

namespace lmdrive::shim {

// CLOCK_MONOTONIC in nanoseconds: the clock of every lmdrive timestamp.
int64_t now_ns() noexcept;

// Converts a libstdc++ steady_clock reading (CLOCK_MONOTONIC on Linux) given
// as nanoseconds since its epoch. Exists so the conversion is named and tested.
int64_t steady_ns_to_monotonic(int64_t steady_ns) noexcept;

// The one exception type a shim throws internally; the C boundary turns it
// into a return code and a message. Nothing escapes lmdrive_get_api's table.
class ShimError : public std::runtime_error {
public:
  ShimError(int32_t code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  int32_t code() const noexcept { return code_; }

private:
  int32_t code_;
};

[[noreturn]] void fail(int32_t code, const std::string& msg);

// printf-style formatting into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Copies src into dst[cap], always NUL-terminated, truncating on a UTF-8
// boundary so a cut never leaves half a character.
void copy_cstr(char* dst, size_t cap, const std::string& src) noexcept;

// Writes code and message into a caller-owned lmd_error, honouring its
// struct_size (an older, smaller struct gets a shorter message). err may be NULL.
void set_error(lmd_error* err, int32_t code, const std::string& msg) noexcept;

// Reads a whole file; throws ShimError(LMD_ERR_INVALID) naming the path.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path) noexcept;

}  // namespace lmdrive::shim
