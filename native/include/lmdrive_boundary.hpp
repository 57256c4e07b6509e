// lmdrive_boundary.hpp — C++ helpers for implementing lmdrive.h: the one
// exception type an engine library throws inside, and the code at the C
// boundary that turns exceptions into return codes and writes messages and
// out structs as far as the caller's struct_size allows. Header-only, shared
// by the reference engine and the SDK shims.
#ifndef LMDRIVE_BOUNDARY_HPP
#define LMDRIVE_BOUNDARY_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "lmdrive.h"

namespace lmdrive {

// An error that carries the ABI return code it must surface as.
class AbiError : public std::runtime_error {
 public:
  AbiError(int32_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int32_t code() const noexcept { return code_; }

 private:
  int32_t code_;
};

// Copies src into dst[cap], always NUL-terminated, truncating on a UTF-8
// boundary so a cut never leaves half a character.
inline void copy_cstr(char* dst, size_t cap, const std::string& src) noexcept {
  if (!dst || cap == 0) return;
  size_t n = src.size();
  if (n >= cap) {
    n = cap - 1;
    while (n > 0 && (static_cast<unsigned char>(src[n]) & 0xC0) == 0x80) --n;
  }
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

// Writes code and message into a caller-owned lmd_error as far as its
// struct_size allows (an older, smaller struct gets a shorter message).
// err may be NULL.
inline void set_error(lmd_error* err, int32_t code, const std::string& message) noexcept {
  if (!err) return;
  const size_t size = err->struct_size;
  if (size >= offsetof(lmd_error, code) + sizeof(int32_t)) err->code = code;
  if (size > offsetof(lmd_error, message)) {
    size_t cap = size - offsetof(lmd_error, message);
    if (cap > sizeof(err->message)) cap = sizeof(err->message);
    copy_cstr(err->message, cap, message);
  }
}

// Runs f; maps an escaping exception to its ABI code and hands the code and
// message to report(int32_t, const char*), so that nothing is ever thrown
// across a C boundary.
template <class Report, class F>
int32_t guarded_with(Report&& report, F&& f) noexcept {
  try {
    f();
    return LMD_OK;
  } catch (const AbiError& e) {
    report(e.code(), e.what());
    return e.code();
  } catch (const std::bad_alloc&) {
    report(LMD_ERR_NOMEM, "out of host memory");
    return LMD_ERR_NOMEM;
  } catch (const std::exception& e) {
    report(LMD_ERR_ENGINE, e.what());
    return LMD_ERR_ENGINE;
  } catch (...) {
    report(LMD_ERR_ENGINE, "unknown internal failure");
    return LMD_ERR_ENGINE;
  }
}

// guarded_with for the ABI: the message goes into a caller-owned lmd_error.
template <class F>
int32_t guarded(lmd_error* err, F&& f) noexcept {
  return guarded_with([err](int32_t code, const char* m) { set_error(err, code, m); }, f);
}

// guarded_with for C interfaces that pass a plain message buffer err[cap]
// (the reference engine's CUDA plugin and its weight callbacks).
template <class F>
int32_t guarded(char* err, size_t cap, F&& f) noexcept {
  return guarded_with([err, cap](int32_t, const char* m) { copy_cstr(err, cap, m); }, f);
}

// Copies the first dst->struct_size bytes of a full-size src into dst,
// keeping the caller's struct_size. ABI structs only grow at the end, so this
// fills exactly the fields an older caller knows. Returns false when
// struct_size leaves no room beyond itself.
template <class T>
bool copy_out(T* dst, const T& src) {
  const uint32_t size = dst->struct_size;
  if (size <= sizeof(uint32_t)) return false;
  std::memcpy(dst, &src, size < sizeof(T) ? size : sizeof(T));
  dst->struct_size = size;
  return true;
}

}  // namespace lmdrive

#endif  // LMDRIVE_BOUNDARY_HPP
