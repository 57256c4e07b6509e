// Launchers of the element-wise, normalisation, reduction and weight
// kernels (kernels.cu); the matrix products are in linear.h. T is __half or
// __nv_bfloat16; every launch goes to the given stream and is checked.
#pragma once

#include "common.h"
#include "linear.h"

namespace lmdcu {

// Random weights (random_weights.h's spec) for the block [row0, row0 + rows) ×
// [col0, col0 + cols) of a tensor with full_cols columns, written to dst with
// row stride ld. T may also be float (weights quantized next).
template <typename T>
void launch_random_fill(uint64_t key, float scale, bool plus_one, uint64_t full_cols,
                        uint64_t row0, uint64_t col0, uint64_t rows, uint64_t cols, T* dst,
                        uint64_t ld, const Launch& l);

// dst[r][c] = T(src[r][col0 + c]) for r < rows, c < cols.
template <typename T>
void launch_convert(const float* src, uint64_t src_ld, uint64_t col0, uint64_t rows,
                    uint64_t cols, T* dst, uint64_t ld, const Launch& l);

// x[i] = table[tokens[i]] for i < n.
template <typename T>
void launch_embed(const int32_t* tokens, int n, const T* table, int hidden, T* x, const Launch& l);

// For each of rows rows: when delta is set, x = T(x + T(delta)) (the residual
// add of a projection's output: fp32, rounded first as a framework would, or
// already in T); then out = weight * T(x * rsqrt(mean(x²) + eps)), as Hugging
// Face's Qwen2RMSNorm.
template <typename T, typename D>
void launch_rmsnorm(T* x, const D* delta, const T* weight, T* out, int rows, int hidden,
                    float eps, const Launch& l);

// Adds the bias to the fp32 q|k|v rows of n tokens, rotates q and k (RoPE)
// and stores them as t says.
template <typename T>
void launch_rope_qkv(const float* qkv, int n, const QkvTarget<T>& t, const Launch& l);

// Tensor-parallel decode without NCCL: every rank's fp32 partial sums and
// flag words, reachable from every GPU (peer access).
constexpr int kMaxPeers = 8;
struct PeerSet {
  const float* part[kMaxPeers];        // each rank's partial-sum buffer
  unsigned long long* flag[kMaxPeers];  // each rank's flag words, one per source rank
};

// Bumps the decode step counter (first kernel of a tensor-parallel decode step).
void launch_step(unsigned long long* counter, const Launch& l);

// One-shot all-reduce fused with the residual add and RMSNorm of one token:
// announces this rank's partial (barrier `slot` of the step), waits for every
// peer's, sums the partials in rank order (so every rank gets the same bits),
// then x = T(x + T(sum)) and out = RMSNorm(x) as launch_rmsnorm.
template <typename T>
void launch_allreduce_rmsnorm(const PeerSet& peers, int tp, int rank,
                              const unsigned long long* counter, int slot, T* x,
                              const T* weight, T* out, int hidden, float eps, const Launch& l);

// The greedy choice over one rank's slice of a logits row: the first index of
// the largest value, the value, and sum(exp(v - max)) over the slice.
struct Pick {
  float max;
  int32_t index;  // -1 when no value was finite
  float sum;
  uint32_t reserved;
};
constexpr int kPickBlocks = 64;
// Device scratch of the greedy reduction; zero it once before the first use.
struct PickScratch {
  Pick part[kPickBlocks];
  unsigned done;  // blocks finished; the last one resets it
  uint32_t reserved[3];
  Pick result;
};

// Queues the next greedy decode step on the device: state[0] = next_pos,
// state[1] = the token the last step chose (pick->result.index; 0 when none
// was finite, a step the host then rejects).
void launch_advance(int32_t* state, int next_pos, const PickScratch* pick, const Launch& l);

// y[i] = float(T(y[i])): logits rounded as a 16-bit lm_head would leave them.
// With pick set (y is then one row), also pick->result = the greedy choice
// over y.
template <typename T>
void launch_round(float* y, int64_t n, PickScratch* pick, const Launch& l);

// launch_round over `rows` rows of n values each (y is rows × n), row r's
// greedy choice in picks[r] (picks may be null: rounding only).
template <typename T>
void launch_round_rows(float* y, int rows, int64_t n, PickScratch* picks, const Launch& l);

// dst[i] = src[rows[i]] for i < k, rows of `width` elements (width % 8 == 0;
// rows is device memory): the last rows of the sequences that emit a token.
template <typename T>
void launch_gather_rows(const T* src, const int32_t* rows, int k, int width, T* dst, const Launch& l);

// act[i][j] = T(T(silu(g)) * u) with g = gu[i][j], u = gu[i][inter + j].
template <typename T>
void launch_silu_mul(const T* gu, int n, int inter, T* act, const Launch& l);

}  // namespace lmdcu
