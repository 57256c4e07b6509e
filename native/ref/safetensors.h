// Reader for the safetensors format: 8-byte little-endian header length, a
// JSON header, then the data section. The file is memory-mapped; every
// structural problem is an Error(LMD_ERR_INVALID) naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lmdref {

struct SafeTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets into the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafeTensor* find(const std::string& name) const;
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const unsigned char* data(const SafeTensor& t) const { return data_ + t.begin; }

 private:
  // Owns the mapping so that it is released even when the constructor throws.
  struct Mapping {
    void* addr = nullptr;
    size_t size = 0;
    ~Mapping();
  };
  std::string path_;
  Mapping map_;
  const unsigned char* data_ = nullptr;
  std::vector<SafeTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
size_t dtype_size(const std::string& dtype);

// Converts count elements of F32, F16 or BF16 at src (any alignment) to fp32.
void convert_to_f32(const std::string& dtype, const unsigned char* src, size_t count, float* out);

}  // namespace lmdref
