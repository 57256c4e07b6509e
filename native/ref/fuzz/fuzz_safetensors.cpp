// Fuzz target: the safetensors reader (8-byte header length, JSON header,
// tensor table with dtypes, shapes and data offsets) on arbitrary bytes.
// Every input must end in a parsed file or an lmdref::Error; any other
// exception, a crash or a sanitizer report is a bug. A parsed file's tensor
// table must point inside the data section: every tensor's first and last
// byte are read.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kit.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader maps a file: give it one that lives in memory.
  static const int fd = memfd_create("lmdrive-fuzz-safetensors", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) std::abort();
  if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  try {
    lmdref::SafetensorsFile file(path);
    volatile unsigned char sink = 0;
    for (const lmdref::SafeTensor& t : file.tensors()) {
      if (file.find(t.name) != &t) std::abort();
      if (t.end > t.begin) sink = sink ^ file.data(t)[0] ^ file.data(t)[t.end - t.begin - 1];
    }
  } catch (const lmdref::Error&) {
  }
  return 0;
}
