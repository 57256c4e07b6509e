// The pieces of the native kit (native/shimcommon) the reference engine
// uses, under lmdref's names: the error type and its helpers, the clock,
// file helpers, the strict JSON parser and the copied request.
#pragma once

#include "lmdrive.h"
#include "lmdrive_boundary.hpp"
#include "lmdrive_shim/json.h"
#include "lmdrive_shim/request.h"
#include "lmdrive_shim/util.h"

namespace lmdref {

using Error = lmdrive::AbiError;
using lmdrive::copy_cstr;
using lmdrive::guarded;
using lmdrive::shim::Clamp;
using lmdrive::shim::dir_exists;
using lmdrive::shim::fail;
using lmdrive::shim::file_exists;
using lmdrive::shim::invalid;
using lmdrive::shim::join_path;
using lmdrive::shim::Json;
using lmdrive::shim::now_ns;
using lmdrive::shim::read_file;
using lmdrive::shim::RequestSpec;

}  // namespace lmdref
