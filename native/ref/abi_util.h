// Boundary helpers for the C ABI, shared with the SDK shims
// (native/include/lmdrive_boundary.hpp).
#pragma once

#include "errors.h"
#include "lmdrive_boundary.hpp"

namespace lmdref {

using lmdrive::copy_out;
using lmdrive::guarded;
using lmdrive::set_error;

}  // namespace lmdref
