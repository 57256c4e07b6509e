// CPU kernels on their own: the vector exp against libm, and the packed GEMM
// against a plain loop for shapes that hit every tail (rows, panels, depth).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"
#include "cpu/gemm.h"
#include "cpu/packed_matrix.h"
#include "cpu/parallel.h"
#include "cpu/vec_exp.h"
#include "quantize.h"
#include "random_weights.h"

using namespace lmdref;

static float rnd(uint64_t i) { return float(splitmix64(i) >> 40) / 16777216.0f * 2.0f - 1.0f; }

TEST_CASE(exp_accuracy) {
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    f32x16 x;
    for (int l = 0; l < 16; ++l) x[l] = -87.0f * float(i * 16 + l) / (200000.0f * 16);
    const f32x16 e = exp16(x);
    for (int l = 0; l < 16; ++l) {
      const double want = std::exp(double(x[l]));
      worst = std::max(worst, std::fabs(e[l] - want) / want);
    }
  }
  std::printf("exp16 worst relative error on [-87, 0]: %.2e\n", worst);
  std::fflush(stdout);
  CHECK(worst < 3e-7);  // about 2 ulp
  f32x16 far = {};
  far[0] = -1000.0f;
  far[1] = 0.0f;
  const f32x16 e = exp16(far);
  CHECK(e[0] >= 0 && e[0] < 1e-37f && e[1] == 1.0f);
}

// Loops run on as many threads as their work pays for.
TEST_CASE(parallel_parts) {
  Parallel par(4);
  CHECK_EQ(par.parts(1000, 1000.0), 1);                   // small: the calling thread alone
  CHECK_EQ(par.parts(1000, 2.5 * Parallel::kMinWork), 2);  // one thread per kMinWork
  CHECK_EQ(par.parts(1000, 1e12), 4);                      // never more than the threads
  CHECK_EQ(par.parts(3, 1e12), 3);                         // nor than the items
  CHECK_EQ(par.parts(0, 1e12), 1);
  Parallel all(4, 0);
  CHECK_EQ(all.parts(1000, 1.0), 4);
  // Every item runs exactly once, whatever the split.
  for (double work : {1.0, 3.0 * Parallel::kMinWork, 1e12}) {
    std::vector<int> seen(1000, 0);
    par.for_range(1000, work, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++seen[size_t(i)];
    });
    CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
  }
}

// int8: C = (A · Qᵀ) * scale + bias, Q and scale from quantize_int8.
static void gemm_shapes(bool int8) {
  Parallel par(2, 0);  // split every loop, however small
  const int64_t ms[] = {1, 5, 6, 7, 97, 200};
  const int64_t ks[] = {1, 3, 256, 257, 600};
  const int64_t ns[] = {1, 15, 16, 17, 40, 70};
  for (int64_t m : ms)
    for (int64_t k : ks)
      for (int64_t n : ns) {
        std::vector<float> A(m * (k + 3)), W(n * k), bias(n), C(m * (n + 2), -7.0f);
        for (size_t i = 0; i < A.size(); ++i) A[i] = rnd(i);
        for (size_t i = 0; i < W.size(); ++i) W[i] = rnd(1000000 + i);
        for (size_t i = 0; i < bias.size(); ++i) bias[i] = rnd(2000000 + i);
        PackedMatrix P;
        P.allocate(n, k, int8);
        P.set_rows(0, n, W.data(), "W");
        std::vector<int8_t> q(n * k);
        std::vector<float> scales(n, 1.0f);
        if (int8) {
          quantize_int8(W.data(), n, k, q.data(), scales.data(), "W");
          for (size_t i = 0; i < W.size(); ++i) W[i] = float(q[i]);  // W is now Q
        }
        std::vector<float> row(k);
        P.get_row(n - 1, row.data());
        for (int64_t t = 0; t < k; ++t) CHECK(row[t] == W[(n - 1) * k + t] * scales[n - 1]);
        gemm(par, A.data(), m, k + 3, P, bias.data(), C.data(), n + 2);
        double worst = 0;
        bool pad_ok = true;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double want = 0, magnitude = 0;
            for (int64_t t = 0; t < k; ++t) {
              const double p = double(A[i * (k + 3) + t]) * W[j * k + t];
              want += p;
              magnitude += std::fabs(p);
            }
            want = want * scales[j] + bias[j];
            magnitude = magnitude * scales[j] + std::fabs(bias[j]);
            // The classic bound for a length-k float sum: k * eps * sum |terms|.
            const double bound = double(k + 1) * 6e-8 * magnitude;
            worst = std::max(worst, std::fabs(C[i * (n + 2) + j] - want) / bound);
          }
          pad_ok = pad_ok && C[i * (n + 2) + n] == -7.0f && C[i * (n + 2) + n + 1] == -7.0f;
        }
        // One row (decode: several panels at once) gives the bits of the
        // same row inside a larger block.
        if (m > 1) {
          std::vector<float> one(n + 2, -7.0f);
          gemm(par, A.data(), 1, k + 3, P, bias.data(), one.data(), n + 2);
          pad_ok = pad_ok && std::memcmp(one.data(), C.data(), n * sizeof(float)) == 0;
        }
        if (!(worst <= 1.0) || !pad_ok)
          check::fail(__FILE__, __LINE__,
                      std::string(int8 ? "int8 " : "") + "gemm m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" +
                          std::to_string(n) + " err " + std::to_string(worst) +
                          (pad_ok ? "" : " (wrote past its columns, or one row differs from a block's)"));
      }
}

TEST_CASE(gemm_shapes_fp32) { gemm_shapes(false); }
TEST_CASE(gemm_shapes_int8) { gemm_shapes(true); }

TEST_MAIN("test_kernels")
