// The model's shape as one GPU of a tensor-parallel group sees it.
#pragma once

#include <cstdint>
#include <string>

#include "plugin_abi.h"
#include "quant.h"

namespace lmdcu {

struct Shape {
  int H = 0, I = 0, V = 0, layers = 0, heads = 0, kv_heads = 0, hd = 0;
  int tp = 1;
  int qh = 0, kvh = 0, Ql = 0, KVl = 0, QKVl = 0, Il = 0;  // per rank
  bool tied = false;
  bool quant = false;  // projections int8 or fp8 (quant.h), activations in T
  QFormat qf = QFormat::Int8;
  bool q_head = false;  // the lm_head quantized too
  float eps = 1e-6f;
  double theta = 10000;
  uint32_t max_seq_len = 0;
};

// Checks that the kernels can run the model at this tp with these weights
// ("" for T, "int8" or "fp8"; throws LMD_ERR_UNSUPPORTED saying why not) and
// derives the per-rank sizes.
Shape make_shape(const lmdref_cuda_model& m, int tp, const std::string& weights = "",
                 bool quantize_lm_head = false);

}  // namespace lmdcu
