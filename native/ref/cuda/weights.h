// One GPU's share of the model's weights: where each tensor lives on the
// device, and how it gets there (read from the core library's weight source,
// or generated on the device for random:<preset>).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "device_buffers.h"
#include "linear.h"
#include "model_shape.h"
#include "plugin_abi.h"

namespace lmdcu {

template <typename T>
struct LayerWeights {
  const T* in_norm = nullptr;    // input_layernorm
  const T* post_norm = nullptr;  // post_attention_layernorm
  Linear<T> qkv;                 // q|k|v of this rank's heads, one matrix
  const T* qkv_bias = nullptr;
  Linear<T> o;                   // this rank's input columns
  Linear<T> gate_up;             // gate|up of this rank's intermediate rows, one matrix
  Linear<T> down;                // this rank's input columns
};

template <typename T>
struct RankWeights {
  DevBuf storage;  // one allocation, every tensor 256-byte aligned
  DevBuf quantized;  // int8/fp8 projections and their scales (Shape::quant)
  DevBuf deq;        // the prefill's dequantization scratch, shared by every layer:
                     // two halves, deq_stride elements apart (Linear::deq points
                     // into the first), so that one layer's matrices can be
                     // dequantized while the layer before computes
  size_t deq_stride = 0;
  // W, one of this rank's quantized matrices, as the prefill reads it when
  // its layer is dequantized ahead into scratch half `half` (0 or 1).
  Linear<T> in_half(const Linear<T>& W, int half) const {
    Linear<T> c = W;
    if (c.deq) c.deq += half * deq_stride;
    return c;
  }
  std::vector<LayerWeights<T>> layers;
  const T* embed = nullptr;  // replicated: one row is read per token
  Linear<T> lm_head;         // vocabulary rows [v0, v1) (tied: rows of embed)
  const T* final_norm = nullptr;
  size_t bytes = 0;
};

// Weight reads from the core library's WeightSource (serialised: one reader
// at a time), or random weights generated on the device.
class WeightFeed {
 public:
  explicit WeightFeed(const lmdref_cuda_weights* w) : w_(w) {}

  // Block [row0, row0+rows) × [col0, col0+cols) of tensor `name`, whose shape
  // is full_rows × full_cols (1-D tensors: full_cols = 1), into dst (row stride ld).
  template <typename T>
  void load(const std::string& name, uint64_t full_rows, uint64_t full_cols, uint64_t row0,
            uint64_t rows, uint64_t col0, uint64_t cols, T* dst, uint64_t ld, cudaStream_t s,
            DevBuf& staging);

  // The same block quantized (quant.h): whole rows are made in fp32 (a row's
  // scale needs all of it, also where the rank keeps only columns [col0,
  // col0+cols)), then the rank's bytes (row stride cols) and the rows' scales
  // are written. bad: a device int, zero on entry; throws LMD_ERR_INVALID
  // naming the tensor when a weight is NaN or infinite.
  void load_quantized(const std::string& name, uint64_t full_rows, uint64_t full_cols,
                      uint64_t row0, uint64_t rows, uint64_t col0, uint64_t cols, QFormat f,
                      uint8_t* q, float* scale, cudaStream_t s, DevBuf& staging, int* bad);

 private:
  const lmdref_cuda_weights* w_;
  std::mutex mu_;
};

// Allocates and fills rank `rank`'s weights (lm_head rows [v0, v1)) on the
// current device; throws LMD_ERR_NOMEM when they do not fit.
template <typename T>
void load_rank_weights(const Shape& s, int rank, int v0, int v1, WeightFeed& feed,
                       cudaStream_t stream, RankWeights<T>& out);

}  // namespace lmdcu
