// Fuzz target: a Hugging Face config.json as the reference engine reads it
// (shape keys, EOS ids, rope settings, generation_config.json not present).
// Every input must end in a validated ModelConfig or an lmdref::Error; a
// config it accepts must have a shape the engine can size its buffers by.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kit.h"
#include "model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::string dir = [] {
    char tmpl[] = "/dev/shm/lmdrive-fuzz-config-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (!d) {
      char alt[] = "/tmp/lmdrive-fuzz-config-XXXXXX";
      d = mkdtemp(alt);
      if (!d) std::abort();
      return std::string(d);
    }
    return std::string(d);
  }();
  const std::string file = dir + "/config.json";
  FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  try {
    const lmdref::ModelConfig m = lmdref::read_hf_model_config(dir);
    if (m.heads == 0 || m.kv_heads == 0 || m.heads % m.kv_heads != 0 || m.head_dim % 2 != 0) std::abort();
    (void)m.param_count();
  } catch (const lmdref::Error&) {
  }
  return 0;
}
