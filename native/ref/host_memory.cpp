#include "host_memory.h"

#include <cstdio>
#include <cstring>

namespace lmdref {

int64_t mem_available_bytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t result = -1;
  while (std::fgets(line, sizeof line, f)) {
    long long kb;
    if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
      result = static_cast<int64_t>(kb) * 1024;
      break;
    }
  }
  std::fclose(f);
  return result;
}

std::string format_gb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

}  // namespace lmdref
