// Errors that carry the ABI return code they must surface as.
#pragma once

#include <cstdint>
#include <string>

#include "lmdrive.h"
#include "lmdrive_boundary.hpp"

namespace lmdref {

using Error = lmdrive::AbiError;

[[noreturn]] inline void fail(int32_t code, const std::string& message) {
  throw Error(code, message);
}

[[noreturn]] inline void invalid(const std::string& message) { fail(LMD_ERR_INVALID, message); }

}  // namespace lmdref
