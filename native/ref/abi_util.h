// Boundary helpers for the C ABI: exceptions to return codes, error messages
// into the caller's lmd_error, and struct_size-aware copies of out structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "errors.h"
#include "lmdrive.h"

namespace lmdref {

// Writes code and message as far as err->struct_size allows; NULL err is fine.
void set_error(lmd_error* err, int32_t code, const std::string& message);

// Runs f; maps an escaping exception to its ABI code and message.
template <class F>
int32_t guarded(lmd_error* err, F&& f) noexcept {
  try {
    f();
    return LMD_OK;
  } catch (const Error& e) {
    set_error(err, e.code(), e.what());
    return e.code();
  } catch (const std::bad_alloc&) {
    set_error(err, LMD_ERR_NOMEM, "out of host memory");
    return LMD_ERR_NOMEM;
  } catch (const std::exception& e) {
    set_error(err, LMD_ERR_ENGINE, e.what());
    return LMD_ERR_ENGINE;
  } catch (...) {
    set_error(err, LMD_ERR_ENGINE, "unknown internal failure");
    return LMD_ERR_ENGINE;
  }
}

// Copies the first dst->struct_size bytes of a full-size src into dst,
// keeping the caller's struct_size. ABI structs only ever grow at the end, so
// this fills exactly the fields an older caller knows. Returns false when
// struct_size leaves no room beyond itself.
template <class T>
bool copy_out(T* dst, const T& src) {
  const uint32_t size = dst->struct_size;
  if (size <= sizeof(uint32_t)) return false;
  std::memcpy(dst, &src, size < sizeof(T) ? size : sizeof(T));
  dst->struct_size = size;
  return true;
}

}  // namespace lmdref
