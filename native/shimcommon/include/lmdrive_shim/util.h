// Small helpers shared by every engine library: the clock, the error type
// used inside a library, safe copies into the fixed-size char arrays of
// lmdrive.h, and file helpers whose errors name the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "lmdrive.h"
#include "lmdrive_boundary.hpp"

namespace lmdrive::shim {

// CLOCK_MONOTONIC in nanoseconds: the clock of every lmdrive timestamp.
int64_t now_ns() noexcept;

// Converts a libstdc++ steady_clock reading (CLOCK_MONOTONIC on Linux) given
// as nanoseconds since its epoch. Exists so the conversion is named and tested.
int64_t steady_ns_to_monotonic(int64_t steady_ns) noexcept;

// The one exception type a library throws internally; the C boundary turns
// it into a return code and a message. Nothing escapes lmdrive_get_api's table.
using ShimError = lmdrive::AbiError;

[[noreturn]] void fail(int32_t code, const std::string& msg);
// fail(LMD_ERR_INVALID, msg): the caller's input is wrong.
[[noreturn]] void invalid(const std::string& msg);

// printf-style formatting into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// NUL-terminated, UTF-8-safe copies into fixed C buffers, and errors into a
// caller's lmd_error as far as its struct_size allows.
using lmdrive::copy_cstr;
using lmdrive::set_error;

// Reads a whole file; throws ShimError(LMD_ERR_INVALID) naming the path.
std::string read_file(const std::string& path);
// True for an existing regular file / directory (after following links).
bool file_exists(const std::string& path) noexcept;
bool dir_exists(const std::string& path) noexcept;
// dir + "/" + name, without doubling a trailing slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace lmdrive::shim
