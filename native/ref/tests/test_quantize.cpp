// The int8 and fp8 weight quantizers (quantize.h) against plain reference
// implementations written another way (double arithmetic, explicit tie
// handling, a search over every fp8 code): same bytes, same scales.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "check.h"
#include "kit.h"
#include "quantize.h"
#include "random_weights.h"

using namespace lmdref;

namespace {

// Division of two floats, correctly rounded to float: the double quotient is
// within half a double ulp, and double → float rounding of it cannot land on
// the wrong side (53 ≥ 2·24 + 2), so this is IEEE float division.
float div_ref(float a, float b) { return float(double(a) / double(b)); }

// Nearest integer, ties to the even one, spelled out.
double rne_ref(double v) {
  const double f = std::floor(v), d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;
}

void int8_ref(const std::vector<float>& w, uint64_t rows, uint64_t cols, std::vector<int8_t>& q,
              std::vector<float>& s) {
  q.assign(rows * cols, 0);
  s.assign(rows, 0);
  for (uint64_t r = 0; r < rows; ++r) {
    double amax = 0;
    for (uint64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(double(w[r * cols + c])));
    s[r] = div_ref(float(amax), 127.0f);
    for (uint64_t c = 0; c < cols && s[r] != 0; ++c) {
      const double v = rne_ref(double(div_ref(w[r * cols + c], s[r])));
      q[r * cols + c] = int8_t(std::max(-127.0, std::min(127.0, v)));
    }
  }
}

// Every finite E4M3 value by code.
double e4m3_value(int code) {
  const int e = (code >> 3) & 15, m = code & 7;
  const double mag = e == 0 ? m * std::ldexp(1.0, -9) : (8 + m) * std::ldexp(1.0, e - 10);
  return (code & 0x80) ? -mag : mag;
}

// The nearest finite code; on a tie the one with an even mantissa (bit 0
// clear); beyond 448 saturate.
uint8_t e4m3_ref(float x) {
  if (std::isnan(x)) return 0x7f;
  const double a = std::fabs(double(x));
  int best = 0;
  for (int code = 1; code <= 0x7e; ++code) {
    const double d = std::fabs(e4m3_value(code) - a), bd = std::fabs(e4m3_value(best) - a);
    if (d < bd || (d == bd && (code & 1) == 0 && (best & 1) == 1)) best = code;
  }
  if (a >= 448) best = 0x7e;
  return uint8_t(best | (std::signbit(x) ? 0x80 : 0));
}

// Rows that hit the edges: ties at .5 after division, zeros, one large
// outlier, negative maxima, tiny values, and plain random ones.
std::vector<float> test_rows(uint64_t rows, uint64_t cols) {
  std::vector<float> w(rows * cols);
  for (uint64_t r = 0; r < rows; ++r) {
    float* row = w.data() + r * cols;
    const RandomRule rule{splitmix64(r + 17), r % 3 == 0 ? 0.05f : 1.0f, false};
    fill_random(rule, 0, cols, row);
    switch (r % 8) {
      case 1:  // amax 127: w / scale is w itself, and k + 0.5 are exact ties
        row[0] = -127.0f;
        for (uint64_t c = 1; c < cols; ++c) row[c] = float(int(c % 250) - 125) + 0.5f;
        break;
      case 2:
        std::memset(row, 0, cols * sizeof(float));
        break;
      case 3:
        row[cols / 2] = 1000.0f;
        break;
      case 4:
        row[1] = -3.5f;
        break;
      case 5:
        for (uint64_t c = 0; c < cols; ++c) row[c] *= 1e-30f;
        break;
      case 6:  // amax 448: fp8's w / scale is w, with ties between E4M3 values
        row[0] = 448.0f;
        for (uint64_t c = 1; c < cols; ++c) row[c] = float(c % 64) * 0.0625f + 0.03125f;
        break;
      default:
        break;
    }
  }
  return w;
}

TEST_CASE(int8_matches) {
  const uint64_t rows = 64, cols = 301;
  const std::vector<float> w = test_rows(rows, cols);
  std::vector<int8_t> q(rows * cols), want_q;
  std::vector<float> s(rows), want_s;
  quantize_int8(w.data(), rows, cols, q.data(), s.data(), "t");
  int8_ref(w, rows, cols, want_q, want_s);
  CHECK(std::memcmp(s.data(), want_s.data(), rows * sizeof(float)) == 0);
  CHECK(q == want_q);
  // The row with 127 at the front is its own scale (1) and holds exact ties.
  CHECK(s[1] == 1.0f);
  CHECK(q[1 * cols + 0] == -127);
  CHECK(q[1 * cols + 1] == -124);  // -123.5 → -124 (even)
  CHECK(q[1 * cols + 2] == -122);  // -122.5 → -122 (even)
  bool saw_odd_tie = false;
  for (uint64_t c = 1; c < cols; ++c) {
    const float v = w[1 * cols + c];
    const int want = int(rne_ref(v));
    CHECK(q[1 * cols + c] == want);
    saw_odd_tie = saw_odd_tie || (std::fabs(v - std::trunc(v)) == 0.5f && int(std::floor(v)) % 2);
  }
  CHECK(saw_odd_tie);
  CHECK(s[2] == 0.0f);
  for (uint64_t c = 0; c < cols; ++c) CHECK(q[2 * cols + c] == 0);
  std::printf("int8: %llu rows × %llu identical to the reference\n", (unsigned long long)rows,
              (unsigned long long)cols);
}

TEST_CASE(fp8_codes) {
  // Every code decodes to its value and encodes back to itself.
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;  // NaN
    const float v = fp8_e4m3_to_float(uint8_t(code));
    CHECK(double(v) == e4m3_value(code));
    CHECK(fp8_e4m3_from_float(v) == code);
  }
  CHECK(std::isnan(fp8_e4m3_to_float(0x7f)));
  CHECK(fp8_e4m3_from_float(1e6f) == 0x7e);
  CHECK(fp8_e4m3_from_float(-1e6f) == 0xfe);
  CHECK(fp8_e4m3_from_float(std::numeric_limits<float>::quiet_NaN()) == 0x7f);
  // Midpoints between neighbours go to the even code; a hair off goes to the nearer.
  int ties = 0;
  for (int code = 0; code < 0x7e; ++code) {
    const double lo = e4m3_value(code), hi = e4m3_value(code + 1);
    const float mid = float((lo + hi) / 2);
    if (double(mid) != (lo + hi) / 2) continue;
    ++ties;
    CHECK(fp8_e4m3_from_float(mid) == ((code & 1) ? code + 1 : code));
    CHECK(fp8_e4m3_from_float(std::nextafter(mid, 0.0f)) == code);
    CHECK(fp8_e4m3_from_float(std::nextafter(mid, 1e9f)) == code + 1);
  }
  CHECK(ties == 0x7e);
}

TEST_CASE(fp8_matches) {
  const uint64_t rows = 64, cols = 301;
  const std::vector<float> w = test_rows(rows, cols);
  std::vector<uint8_t> q(rows * cols);
  std::vector<float> s(rows);
  quantize_fp8(w.data(), rows, cols, q.data(), s.data(), "t");
  for (uint64_t r = 0; r < rows; ++r) {
    double amax = 0;
    for (uint64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(double(w[r * cols + c])));
    const float want_s = div_ref(float(amax), 448.0f);
    CHECK(s[r] == want_s);
    for (uint64_t c = 0; c < cols; ++c) {
      const uint8_t want = want_s == 0 ? 0 : e4m3_ref(div_ref(w[r * cols + c], want_s));
      if (q[r * cols + c] != want) {
        check::fail(__FILE__, __LINE__, "fp8 row " + std::to_string(r) + " col " +
                                            std::to_string(c) + ": " +
                                            std::to_string(q[r * cols + c]) + " != " +
                                            std::to_string(want));
        return;
      }
    }
  }
  CHECK(s[6] == 1.0f);
  std::printf("fp8: %llu rows × %llu identical to the reference\n", (unsigned long long)rows,
              (unsigned long long)cols);
}

TEST_CASE(refuses_non_finite) {
  std::vector<float> w = {1.0f, std::numeric_limits<float>::infinity(), 2.0f};
  std::vector<int8_t> q(3);
  float s;
  try {
    quantize_int8(w.data(), 1, 3, q.data(), &s, "model.layers.0.mlp.up_proj.weight");
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == LMD_ERR_INVALID);
    CHECK(std::string(e.what()).find("model.layers.0.mlp.up_proj.weight") != std::string::npos);
  }
}

TEST_CASE(names_and_formats) {
  CHECK(is_linear_weight("model.layers.3.self_attn.q_proj.weight"));
  CHECK(is_linear_weight("model.layers.0.mlp.down_proj.weight"));
  CHECK(!is_linear_weight("model.layers.0.self_attn.q_proj.bias"));
  CHECK(!is_linear_weight("lm_head.weight"));
  CHECK(!is_linear_weight("model.embed_tokens.weight"));
  CHECK(parse_weight_format("") == WeightFormat::Native);
  CHECK(parse_weight_format("int8") == WeightFormat::Int8);
  CHECK(parse_weight_format("fp8") == WeightFormat::Fp8);
  try {
    parse_weight_format("int4");
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("\"int4\"") != std::string::npos);
  }
}

}  // namespace

TEST_MAIN("test_quantize")
