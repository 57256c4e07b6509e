// A weight matrix [rows × cols] (a Linear's [out, in]) stored in panels of 16
// rows, k-major inside a panel: for each input index k, the 16 weights of 16
// consecutive outputs are adjacent, which is what the GEMM kernel streams.
// Weights are fp32, or int8 with one scale per row (quantize.h): 16 bytes per
// k instead of 64, dequantized in registers by the kernel.
#pragma once

#include <cstdint>
#include <memory>
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
  void allocate(uint64_t rows, uint64_t cols, bool int8 = false);

  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }
  uint64_t panels() const { return (rows_ + kPanel - 1) / kPanel; }
  bool is_int8() const { return int8_ != nullptr; }
  const float* panel(uint64_t p) const { return data_.data() + p * cols_ * kPanel; }
  const int8_t* panel_int8(uint64_t p) const { return int8_.get() + p * cols_ * kPanel; }
  // One scale per row (int8 only), padded with zeros to whole panels.
  const float* scales() const { return scales_.data(); }

  // Writes rows [row0, row0 + n) from a row-major block of n × cols floats;
  // int8 matrices quantize each row (what names the tensor in errors).
  void set_rows(uint64_t row0, uint64_t n, const float* src, const std::string& what);
  // Gathers one row back (embedding lookup on a tied lm_head); int8 rows come
  // back dequantized.
  void get_row(uint64_t row, float* out) const;

 private:
  struct Free {
    void operator()(int8_t* p) const;
  };
  uint64_t rows_ = 0, cols_ = 0;
  FloatBuffer data_;
  std::unique_ptr<int8_t[], Free> int8_;
  FloatBuffer scales_;
};

// Loads the named tensors, which all have `cols` columns, one below the other
// (e.g. q, k and v projections into one matrix), quantized to int8 when asked.
void pack_tensors(Parallel& par, const WeightSource& src, const std::vector<std::string>& names,
                  PackedMatrix& out, bool int8 = false);

// Loads the named 1-D tensors one after another into out.
void load_vectors(const WeightSource& src, const std::vector<std::string>& names, FloatBuffer& out);

}  // namespace lmdref
