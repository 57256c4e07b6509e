#include "cpu/gemm.h"

#include <algorithm>

#include "cpu/packed_matrix.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace lmdref {

namespace {

constexpr int kNR = PackedMatrix::kPanel;  // outputs per panel
constexpr int kMR = 6;                     // rows per micro-kernel call
constexpr int64_t kKC = 256;               // input depth per pass: a panel slice stays in L1
constexpr int64_t kMC = 96;                // rows per task: the A slice stays in L2

// Accumulates rows [0, R) of A (depth kc) against one panel slice into C's
// first ncols columns. first: C holds nothing yet; last: add the bias.
template <int R>
LMDREF_INLINE void micro(const float* A, int64_t lda, const float* B, int64_t kc, float* C,
                         int64_t ldc, int ncols, bool first, const float* bias) {
  f32x16 acc[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = f32x16{};
    if (!first)
      for (int j = 0; j < ncols; ++j) acc[r][j] = C[r * ldc + j];
  }
  for (int64_t k = 0; k < kc; ++k) {
    f32x16 b;
    __builtin_memcpy(&b, B + k * kNR, sizeof b);
    for (int r = 0; r < R; ++r) acc[r] += A[r * lda + k] * b;
  }
  for (int r = 0; r < R; ++r) {
    if (bias)
      for (int j = 0; j < ncols; ++j) acc[r][j] += bias[j];
    if (ncols == kNR) {
      __builtin_memcpy(C + r * ldc, &acc[r], sizeof acc[r]);
    } else {
      for (int j = 0; j < ncols; ++j) C[r * ldc + j] = acc[r][j];
    }
  }
}

// Rows [i0, i1) × panels [p0, p1), all of the input depth.
LMDREF_MULTIVERSION
void tile(const float* A, int64_t lda, int64_t i0, int64_t i1, const float* W, int64_t K,
          int64_t N, int64_t p0, int64_t p1, const float* bias, float* C, int64_t ldc) {
  for (int64_t kc = 0; kc < K; kc += kKC) {
    const int64_t kl = std::min(kKC, K - kc);
    const bool first = kc == 0, last = kc + kl == K;
    for (int64_t p = p0; p < p1; ++p) {
      const float* B = W + p * K * kNR + kc * kNR;
      const int ncols = static_cast<int>(std::min<int64_t>(kNR, N - p * kNR));
      const float* bp = last && bias ? bias + p * kNR : nullptr;
      for (int64_t i = i0; i < i1; i += kMR) {
        const float* a = A + i * lda + kc;
        float* c = C + i * ldc + p * kNR;
        switch (std::min<int64_t>(kMR, i1 - i)) {
          case 6: micro<6>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
          case 5: micro<5>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
          case 4: micro<4>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
          case 3: micro<3>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
          case 2: micro<2>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
          default: micro<1>(a, lda, B, kl, c, ldc, ncols, first, bp); break;
        }
      }
    }
  }
}

}  // namespace

void gemm(Parallel& par, const float* A, int64_t m, int64_t lda, const PackedMatrix& W,
          const float* bias, float* C, int64_t ldc) {
  if (m <= 0) return;
  const int64_t K = static_cast<int64_t>(W.cols()), N = static_cast<int64_t>(W.rows());
  const int64_t P = static_cast<int64_t>(W.panels());
  const int64_t row_blocks = (m + kMC - 1) / kMC;
  // Several tasks per thread so uneven ones even out; panel groups split N.
  const int64_t want = 4 * par.threads();
  const int64_t groups = std::clamp<int64_t>((want + row_blocks - 1) / row_blocks, 1, P);
  const float* w = W.panel(0);
  par.for_range(row_blocks * groups, double(m) * double(K) * double(N), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t rb = t / groups, g = t % groups;
      const int64_t i0 = rb * kMC, i1 = std::min(m, i0 + kMC);
      const int64_t p0 = P * g / groups, p1 = P * (g + 1) / groups;
      tile(A, lda, i0, i1, w, K, N, p0, p1, bias, C, ldc);
    }
  });
}

}  // namespace lmdref
