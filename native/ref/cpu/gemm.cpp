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


typedef signed char i8x16 __attribute__((vector_size(16)));
typedef int i32x16 __attribute__((vector_size(64)));

// The 16 weights of one input index k of a panel, as floats.
LMDREF_INLINE f32x16 load_weights(const float* B) {
  f32x16 b;
  __builtin_memcpy(&b, B, sizeof b);
  return b;
}
LMDREF_INLINE f32x16 load_weights(const int8_t* B) {
  // Spelled element by element, GCC 12 makes this one sign-extending load and
  // one convert (vpmovsxbd, vcvtdq2ps) on AVX-512; __builtin_convertvector
  // from bytes, or a loop, ends up scalar or goes through the stack.
  i8x16 q;
  __builtin_memcpy(&q, B, sizeof q);
  const i32x16 w = {q[0], q[1], q[2],  q[3],  q[4],  q[5],  q[6],  q[7],
                    q[8], q[9], q[10], q[11], q[12], q[13], q[14], q[15]};
  return __builtin_convertvector(w, f32x16);  // exact: int8 values are floats
}

// Accumulates rows [0, R) of A (depth kc) against one panel slice into C's
// first ncols columns. first: C holds nothing yet; last (scale or bias set):
// multiply by the int8 rows' scales, then add the bias.
template <int R, typename Wt>
LMDREF_INLINE void micro(const float* A, int64_t lda, const Wt* B, int64_t kc, float* C,
                         int64_t ldc, int ncols, bool first, const float* scale,
                         const float* bias) {
  f32x16 acc[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = f32x16{};
    if (!first)
      for (int j = 0; j < ncols; ++j) acc[r][j] = C[r * ldc + j];
  }
  for (int64_t k = 0; k < kc; ++k) {
    const f32x16 b = load_weights(B + k * kNR);
    for (int r = 0; r < R; ++r) acc[r] += A[r * lda + k] * b;
  }
  for (int r = 0; r < R; ++r) {
    if (scale) acc[r] *= load_weights(scale);
    if (bias)
      for (int j = 0; j < ncols; ++j) acc[r][j] += bias[j];
    if (ncols == kNR) {
      __builtin_memcpy(C + r * ldc, &acc[r], sizeof acc[r]);
    } else {
      for (int j = 0; j < ncols; ++j) C[r * ldc + j] = acc[r][j];
    }
  }
}

// One row of A against kP full panels side by side (decode): kP independent
// accumulators hide the FMA latency that a single row's chain would expose.
// Each output is summed in the same order as micro<1>, so the bits match.
constexpr int kP = 4;
template <typename Wt>
LMDREF_INLINE void micro_row(const float* A, const Wt* B, int64_t panel_stride, int64_t kc,
                             float* C, bool first, const float* scale, const float* bias) {
  f32x16 acc[kP];
  for (int j = 0; j < kP; ++j) {
    acc[j] = f32x16{};
    if (!first) __builtin_memcpy(&acc[j], C + j * kNR, sizeof acc[j]);
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float a = A[k];
    for (int j = 0; j < kP; ++j) acc[j] += a * load_weights(B + j * panel_stride + k * kNR);
  }
  for (int j = 0; j < kP; ++j) {
    if (scale) acc[j] *= load_weights(scale + j * kNR);
    if (bias) acc[j] += load_weights(bias + j * kNR);
    __builtin_memcpy(C + j * kNR, &acc[j], sizeof acc[j]);
  }
}

// Rows [i0, i1) × panels [p0, p1), all of the input depth. scales: one per
// row of an int8 W, null for fp32.
template <typename Wt>
LMDREF_INLINE void tile_body(const float* A, int64_t lda, int64_t i0, int64_t i1, const Wt* W,
                             const float* scales, int64_t K, int64_t N, int64_t p0, int64_t p1,
                             const float* bias, float* C, int64_t ldc) {
  for (int64_t kc = 0; kc < K; kc += kKC) {
    const int64_t kl = std::min(kKC, K - kc);
    const bool first = kc == 0, last = kc + kl == K;
    int64_t p = p0;
    if (i1 - i0 == 1) {
      for (; p + kP <= p1 && (p + kP) * kNR <= N; p += kP)
        micro_row(A + i0 * lda + kc, W + p * K * kNR + kc * kNR, K * kNR, kl,
                  C + i0 * ldc + p * kNR, first, last && scales ? scales + p * kNR : nullptr,
                  last && bias ? bias + p * kNR : nullptr);
    }
    for (; p < p1; ++p) {
      const Wt* B = W + p * K * kNR + kc * kNR;
      const int ncols = static_cast<int>(std::min<int64_t>(kNR, N - p * kNR));
      const float* bp = last && bias ? bias + p * kNR : nullptr;
      const float* sp = last && scales ? scales + p * kNR : nullptr;
      for (int64_t i = i0; i < i1; i += kMR) {
        const float* a = A + i * lda + kc;
        float* c = C + i * ldc + p * kNR;
        switch (std::min<int64_t>(kMR, i1 - i)) {
          case 6: micro<6>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
          case 5: micro<5>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
          case 4: micro<4>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
          case 3: micro<3>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
          case 2: micro<2>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
          default: micro<1>(a, lda, B, kl, c, ldc, ncols, first, sp, bp); break;
        }
      }
    }
  }
}

LMDREF_MULTIVERSION
void tile(const float* A, int64_t lda, int64_t i0, int64_t i1, const float* W, int64_t K,
          int64_t N, int64_t p0, int64_t p1, const float* bias, float* C, int64_t ldc) {
  tile_body(A, lda, i0, i1, W, nullptr, K, N, p0, p1, bias, C, ldc);
}

LMDREF_MULTIVERSION
void tile(const float* A, int64_t lda, int64_t i0, int64_t i1, const int8_t* W,
          const float* scales, int64_t K, int64_t N, int64_t p0, int64_t p1, const float* bias,
          float* C, int64_t ldc) {
  tile_body(A, lda, i0, i1, W, scales, K, N, p0, p1, bias, C, ldc);
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
  const float* w = W.is_int8() ? nullptr : W.panel(0);
  const int8_t* q = W.is_int8() ? W.panel_int8(0) : nullptr;
  par.for_range(row_blocks * groups, double(m) * double(K) * double(N), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t rb = t / groups, g = t % groups;
      const int64_t i0 = rb * kMC, i1 = std::min(m, i0 + kMC);
      const int64_t p0 = P * g / groups, p1 = P * (g + 1) / groups;
      if (q)
        tile(A, lda, i0, i1, q, W.scales(), K, N, p0, p1, bias, C, ldc);
      else
        tile(A, lda, i0, i1, w, K, N, p0, p1, bias, C, ldc);
    }
  });
}

}  // namespace lmdref
