#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "kit.h"
#include "weight_source.h"

namespace lmdref {

namespace {

constexpr uint64_t kMaxHeader = 100u * 1000 * 1000;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3FF) << 13;
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2" ||
      d == "F8_E8M0")
    return 1;
  return 0;
}

void convert_to_f32(const std::string& dtype, const unsigned char* src, size_t count, float* out) {
  if (dtype == "F32") {
    std::memcpy(out, src, count * 4);
  } else if (dtype == "BF16") {
    for (size_t i = 0; i < count; ++i) {
      uint16_t b;
      std::memcpy(&b, src + 2 * i, 2);
      uint32_t bits = uint32_t(b) << 16;
      std::memcpy(out + i, &bits, 4);
    }
  } else if (dtype == "F16") {
    for (size_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  } else {
    invalid("cannot convert dtype " + dtype + " to fp32");
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  auto bad = [&](const std::string& what) { invalid(path + ": " + what); };

  Fd f;
  f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) bad(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(f.fd, &st) != 0) bad(std::string("cannot stat: ") + std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) bad("file of " + std::to_string(size) + " bytes is too small for a safetensors header");

  void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (addr == MAP_FAILED) bad(std::string("cannot mmap: ") + std::strerror(errno));
  map_.addr = addr;
  map_.size = size;
  const unsigned char* base = static_cast<const unsigned char*>(addr);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | base[i];
  if (header_len > kMaxHeader)
    bad("header length " + std::to_string(header_len) + " is absurd (more than 100 MB)");
  if (header_len > size - 8)
    bad("header length " + std::to_string(header_len) + " runs past the end of the file (" +
        std::to_string(size) + " bytes)");
  data_ = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  const Json header = Json::parse(
      std::string_view(reinterpret_cast<const char*>(base + 8), header_len), path + ": header");
  if (!header.is_object()) bad("header is not a JSON object");

  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad("__metadata__ is not an object");
      continue;
    }
    const std::string t = "tensor \"" + name + "\": ";
    if (!entry.is_object()) bad(t + "entry is not an object");
    for (const auto& m : entry.members())
      if (m.first != "dtype" && m.first != "shape" && m.first != "data_offsets")
        bad(t + "unknown field \"" + m.first + "\"");
    const Json* dt = entry.find("dtype");
    const Json* sh = entry.find("shape");
    const Json* off = entry.find("data_offsets");
    if (!dt || !dt->is_string()) bad(t + "missing string field \"dtype\"");
    if (!sh || !sh->is_array()) bad(t + "missing array field \"shape\"");
    if (!off || !off->is_array() || off->items().size() != 2)
      bad(t + "\"data_offsets\" must be an array [begin, end]");

    SafeTensor st;
    st.name = name;
    st.dtype = dt->as_string();
    const size_t esize = dtype_size(st.dtype);
    if (esize == 0) bad(t + "unknown dtype \"" + st.dtype + "\"");
    uint64_t bytes = esize;
    for (const auto& d : sh->items()) {
      uint64_t n;
      if (!d.to_u64(&n)) bad(t + "shape holds a value that is not a non-negative integer");
      if (__builtin_mul_overflow(bytes, n, &bytes)) bad(t + "shape is too large");
      st.shape.push_back(n);
    }
    if (!off->items()[0].to_u64(&st.begin) || !off->items()[1].to_u64(&st.end))
      bad(t + "data_offsets must be non-negative integers");
    if (st.end < st.begin)
      bad(t + "data_offsets end " + std::to_string(st.end) + " is before begin " +
          std::to_string(st.begin));
    if (st.end > data_size)
      bad(t + "data_offsets end " + std::to_string(st.end) + " is past the data section (" +
          std::to_string(data_size) + " bytes)");
    if (st.end - st.begin != bytes)
      bad(t + "shape " + shape_string(st.shape) + " of dtype " + st.dtype + " needs " +
          std::to_string(bytes) + " bytes but data_offsets span " +
          std::to_string(st.end - st.begin));
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(st));
  }

  std::vector<const SafeTensor*> order;
  for (const SafeTensor& t : tensors_)
    if (t.end > t.begin) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const SafeTensor* a, const SafeTensor* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      bad("tensors \"" + order[i - 1]->name + "\" and \"" + order[i]->name + "\" overlap");
}

SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile::Mapping::~Mapping() {
  if (addr) munmap(addr, size);
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace lmdref
