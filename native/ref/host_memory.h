// Host memory facts used to refuse a model that cannot fit before allocating it.
#pragma once

#include <cstdint>
#include <string>

namespace lmdref {

// MemAvailable from /proc/meminfo in bytes; -1 when unknown.
int64_t mem_available_bytes();

// "56.4 GB" (decimal gigabytes, one decimal).
std::string format_gb(uint64_t bytes);

}  // namespace lmdref
