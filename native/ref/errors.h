// Errors that carry the ABI return code they must surface as.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "lmdrive.h"

namespace lmdref {

class Error : public std::runtime_error {
 public:
  Error(int32_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int32_t code() const { return code_; }

 private:
  int32_t code_;
};

[[noreturn]] inline void fail(int32_t code, const std::string& message) {
  throw Error(code, message);
}

[[noreturn]] inline void invalid(const std::string& message) { fail(LMD_ERR_INVALID, message); }

}  // namespace lmdref
