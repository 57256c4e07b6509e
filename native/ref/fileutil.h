// Small file helpers with errors that name the file.
#pragma once

#include <string>

namespace lmdref {

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
// Whole file as bytes; throws Error(LMD_ERR_INVALID) naming the file.
std::string read_file(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace lmdref
