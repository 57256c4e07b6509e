// Matrix products against packed weights: C = A · Wᵀ (+ bias), the Linear
// layer of every projection. One code path serves prefill (many rows) and
// decode (one row).
#pragma once

#include <cstdint>

namespace lmdref {

class Parallel;
class PackedMatrix;

// A is m × W.cols() (row stride lda); C is m × W.rows() (row stride ldc).
// bias, when not null, has W.rows() entries. Each output is a dot product
// accumulated in input order in fp32; for an int8 W that sum (of A times the
// int8 values) is then multiplied by the row's scale, before the bias.
void gemm(Parallel& par, const float* A, int64_t m, int64_t lda, const PackedMatrix& W,
          const float* bias, float* C, int64_t ldc);

}  // namespace lmdref
