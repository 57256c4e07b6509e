#include "cpu/packed_matrix.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/parallel.h"
#include "kit.h"
#include "quantize.h"
#include "weight_source.h"

namespace lmdref {

void PackedMatrix::Free::operator()(int8_t* p) const { std::free(p); }

void PackedMatrix::allocate(uint64_t rows, uint64_t cols, bool int8) {
  rows_ = rows;
  cols_ = cols;
  const uint64_t n = panels() * cols * kPanel;
  if (int8) {
    data_ = FloatBuffer();
    void* p = nullptr;
    if (posix_memalign(&p, 64, n + 64) != 0) throw std::bad_alloc();
    std::memset(p, 0, n);
    int8_.reset(static_cast<int8_t*>(p));
    scales_.assign_zero(panels() * kPanel);
  } else {
    int8_.reset();
    scales_ = FloatBuffer();
    data_.assign_zero(n);
  }
}

void PackedMatrix::set_rows(uint64_t row0, uint64_t n, const float* src, const std::string& what) {
  std::vector<int8_t> q(is_int8() ? cols_ : 0);
  for (uint64_t r = 0; r < n; ++r) {
    const uint64_t row = row0 + r;
    const uint64_t at = (row / kPanel) * cols_ * kPanel + row % kPanel;
    const float* s = src + r * cols_;
    if (is_int8()) {
      const float scale = row_scale(s, cols_, kInt8Max, what);
      quantize_row_int8(s, cols_, scale, q.data());
      scales_.data()[row] = scale;
      int8_t* dst = int8_.get() + at;
      for (uint64_t k = 0; k < cols_; ++k) dst[k * kPanel] = q[k];
    } else {
      float* dst = data_.data() + at;
      for (uint64_t k = 0; k < cols_; ++k) dst[k * kPanel] = s[k];
    }
  }
}

void PackedMatrix::get_row(uint64_t row, float* out) const {
  const uint64_t at = (row / kPanel) * cols_ * kPanel + row % kPanel;
  if (is_int8()) {
    const int8_t* s = int8_.get() + at;
    const float scale = scales_.data()[row];
    for (uint64_t k = 0; k < cols_; ++k) out[k] = float(s[k * kPanel]) * scale;
    return;
  }
  const float* s = data_.data() + at;
  for (uint64_t k = 0; k < cols_; ++k) out[k] = s[k * kPanel];
}

void pack_tensors(Parallel& par, const WeightSource& src, const std::vector<std::string>& names,
                  PackedMatrix& out, bool int8) {
  uint64_t rows = 0, cols = 0;
  std::vector<uint64_t> row_counts;
  for (const std::string& name : names) {
    TensorInfo ti = src.info(name);
    if (!ti.found || ti.shape.size() != 2) invalid("tensor \"" + name + "\" is not a matrix");
    if (cols != 0 && ti.shape[1] != cols) invalid("tensor \"" + name + "\" has the wrong width");
    cols = ti.shape[1];
    row_counts.push_back(ti.shape[0]);
    rows += ti.shape[0];
  }
  out.allocate(rows, cols, int8);
  // Threads take chunks of rows; each row's floats belong to one thread only.
  constexpr uint64_t kChunk = 4 * PackedMatrix::kPanel;
  uint64_t row0 = 0;
  for (size_t t = 0; t < names.size(); ++t) {
    const uint64_t n = row_counts[t];
    const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
    // Reading, converting and packing: a few units per element.
    par.for_range(chunks, 4.0 * double(n) * double(cols), [&](int64_t b, int64_t e) {
      std::vector<float> buf(kChunk * cols);
      for (int64_t c = b; c < e; ++c) {
        const uint64_t r = static_cast<uint64_t>(c) * kChunk;
        const uint64_t m = std::min(kChunk, n - r);
        src.read(names[t], r * cols, m * cols, buf.data());
        out.set_rows(row0 + r, m, buf.data(), names[t]);
      }
    });
    row0 += n;
  }
}

void load_vectors(const WeightSource& src, const std::vector<std::string>& names, FloatBuffer& out) {
  uint64_t total = 0;
  for (const std::string& name : names) {
    TensorInfo ti = src.info(name);
    if (!ti.found || ti.shape.size() != 1) invalid("tensor \"" + name + "\" is not a vector");
    total += ti.shape[0];
  }
  out.assign_zero(total);
  uint64_t at = 0;
  for (const std::string& name : names) {
    const uint64_t n = src.info(name).shape[0];
    src.read(name, 0, n, out.data() + at);
    at += n;
  }
}

}  // namespace lmdref
