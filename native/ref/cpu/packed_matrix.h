// A weight matrix [rows × cols] (a Linear's [out, in]) stored in panels of 16
// rows, k-major inside a panel: for each input index k, the 16 weights of 16
// consecutive outputs are adjacent, which is what the GEMM kernel streams.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/float_buffer.h"

namespace lmdref {

class Parallel;
class WeightSource;

class PackedMatrix {
 public:
  static constexpr int kPanel = 16;

  // Zero-filled, so the padding rows of the last panel contribute nothing.
  void allocate(uint64_t rows, uint64_t cols);

  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }
  uint64_t panels() const { return (rows_ + kPanel - 1) / kPanel; }
  const float* panel(uint64_t p) const { return data_.data() + p * cols_ * kPanel; }

  // Writes rows [row0, row0 + n) from a row-major block of n × cols floats.
  void set_rows(uint64_t row0, uint64_t n, const float* src);
  // Gathers one row back (embedding lookup on a tied lm_head).
  void get_row(uint64_t row, float* out) const;

 private:
  uint64_t rows_ = 0, cols_ = 0;
  FloatBuffer data_;
};

// Loads the named tensors, which all have `cols` columns, one below the other
// (e.g. q, k and v projections into one matrix).
void pack_tensors(Parallel& par, const WeightSource& src, const std::vector<std::string>& names,
                  PackedMatrix& out);

// Loads the named 1-D tensors one after another into out.
void load_vectors(const WeightSource& src, const std::vector<std::string>& names, FloatBuffer& out);

}  // namespace lmdref
