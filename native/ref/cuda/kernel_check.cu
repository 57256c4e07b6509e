// The GPU check of the CUDA backend's kernels, one by one, before anything is
// timed: each kernel against its alternative (bit for bit where they are
// meant to compute the same function in the same order) and against a
// double-precision reference on the host; then their speed on Qwen2.5-14B's
// shapes against the floors measured in the same process (device-to-device
// copy bandwidth, a pure streaming read of the same bytes).
//
// usage: lmdref_kernel_check OUT.json [quick]
// Prints one line per check ("ok" / "FAIL") and per timing, and a last line
// "kernel check: N/M ok; hopper_prefill_attention=ok|FAIL|absent". Exit
// status 1 when any check failed. gpu_check.sh reads the last line: when the
// Hopper attention failed, every later step runs with
// LMDREF_CUDA_PREFILL_ATTN=mma.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "attention.h"
#include "attention_tiles.cuh"
#include "kernels.h"
#include "linear.h"

using namespace lmdcu;

namespace {

int g_checks = 0, g_failed = 0;
std::string g_json;

void json_add(const std::string& item) {
  if (!g_json.empty()) g_json += ",\n";
  g_json += item;
}

void check(bool ok, const std::string& what, const std::string& figures) {
  ++g_checks;
  if (!ok) ++g_failed;
  std::printf("%s check %-58s %s\n", ok ? "ok  " : "FAIL", what.c_str(), figures.c_str());
  std::fflush(stdout);
  json_add("{\"kind\": \"check\", \"what\": \"" + what + "\", \"ok\": " + (ok ? "true" : "false") +
           ", \"figures\": \"" + figures + "\"}");
}

void timing(const std::string& what, const std::string& figures, const std::string& json_fields) {
  std::printf("time %-64s %s\n", what.c_str(), figures.c_str());
  std::fflush(stdout);
  json_add("{\"kind\": \"time\", \"what\": \"" + what + "\", " + json_fields + "}");
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

// Reproducible pseudo-random values in [-1, 1).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return float(double(s >> 11) * (2.0 / 9007199254740992.0) - 1.0);
  }
};

template <typename T> T to_t(float x);
template <> __half to_t<__half>(float x) { return __float2half_rn(x); }
template <> __nv_bfloat16 to_t<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
float to_float(__half x) { return __half2float(x); }
float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> const char* tname();
template <> const char* tname<__half>() { return "fp16"; }
template <> const char* tname<__nv_bfloat16>() { return "bf16"; }

template <typename U>
struct Dev {
  U* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { CU_CHECK(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(U))); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  void put(const std::vector<U>& h) { CU_CHECK(cudaMemcpy(p, h.data(), n * sizeof(U), cudaMemcpyHostToDevice)); }
  std::vector<U> get() const {
    std::vector<U> h(n);
    CU_CHECK(cudaMemcpy(h.data(), p, n * sizeof(U), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() { CU_CHECK(cudaMemset(p, 0xFF, n * sizeof(U))); }  // NaN in every float type
};

template <typename T>
std::vector<T> random_t(size_t n, uint64_t seed, float scale = 1.f) {
  Rng r(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = to_t<T>(r.next() * scale);
  return v;
}

// Milliseconds per call of fn: the median of `reps` timed batches of `inner` calls.
double time_ms(const std::function<void()>& fn, int reps = 7, int inner = 1) {
  cudaEvent_t a, b;
  CU_CHECK(cudaEventCreate(&a));
  CU_CHECK(cudaEventCreate(&b));
  fn();
  CU_CHECK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    CU_CHECK(cudaEventRecord(a));
    for (int i = 0; i < inner; ++i) fn();
    CU_CHECK(cudaEventRecord(b));
    CU_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CU_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms / float(inner));
  }
  CU_CHECK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// ---------------------------------------------------------------------------
// Prefill attention: the mma.sync kernel, the Hopper kernel and a float64
// reference of causal GQA attention over the T-rounded inputs.

struct AttnCase {
  int n, qh, kvh, start;
};

template <typename T>
bool prefill_case(const AttnCase& c, bool hopper, uint64_t seed) {
  const int hd = 128, L = c.start + c.n, cap = L + 37;
  const int q_ld = c.qh * hd;
  std::vector<T> q = random_t<T>(size_t(c.n) * q_ld, seed);
  std::vector<T> k = random_t<T>(size_t(c.kvh) * cap * hd, seed + 1);
  std::vector<T> v = random_t<T>(size_t(c.kvh) * cap * hd, seed + 2);
  // Positions from L on hold NaN: no kernel may let them through.
  for (int g = 0; g < c.kvh; ++g)
    for (int p = L; p < cap; ++p)
      for (int d = 0; d < hd; ++d) {
        uint16_t nan = 0xFFFF;
        std::memcpy(&k[(size_t(g) * cap + p) * hd + d], &nan, 2);
        std::memcpy(&v[(size_t(g) * cap + p) * hd + d], &nan, 2);
      }
  Dev<T> dq(q.size()), dk(k.size()), dv(v.size()), o1(size_t(c.n) * q_ld), o2(size_t(c.n) * q_ld);
  Dev<int32_t> st(3);  // position, token, cache base
  dq.put(q), dk.put(k), dv.put(v);
  st.put({c.start, 0, 0});
  AttentionArgs<T> a;
  a.q = dq.p, a.k_cache = dk.p, a.v_cache = dv.p, a.cap = cap, a.state = st.p, a.n = c.n;
  a.q_heads = c.qh, a.kv_heads = c.kvh, a.head_dim = hd, a.host_start = c.start;
  const Launch l{nullptr, false, 0};
  o1.poison();
  a.out = o1.p;
  launch_prefill_attention<T>(a, l);
  if (hopper) {
    o2.poison();
    a.out = o2.p;
    launch_prefill_attention_sm90<T>(a, l);
  }
  CU_CHECK(cudaDeviceSynchronize());
  const std::vector<T> r1 = o1.get(), r2 = hopper ? o2.get() : std::vector<T>();

  // Reference rows: all of three heads when small, every 7th row otherwise.
  const int heads[3] = {0, c.qh / 2, c.qh - 1};
  const int step = c.n <= 1024 ? 1 : 7;
  double e1 = 0, e2 = 0, e12 = 0, nr = 0;
  bool finite = true;
  std::vector<double> s(L), acc(hd);
  for (int h : heads) {
    const int g = h / (c.qh / c.kvh);
    for (int i = 0; i < c.n; i += step) {
      const int keys = c.start + i + 1;
      double mx = -1e300;
      for (int j = 0; j < keys; ++j) {
        double dot = 0;
        for (int d = 0; d < hd; ++d)
          dot += double(to_float(q[size_t(i) * q_ld + h * hd + d])) *
                 double(to_float(k[(size_t(g) * cap + j) * hd + d]));
        s[j] = dot / std::sqrt(double(hd));
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < keys; ++j) sum += (s[j] = std::exp(s[j] - mx));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int j = 0; j < keys; ++j)
        for (int d = 0; d < hd; ++d) acc[d] += s[j] * double(to_float(v[(size_t(g) * cap + j) * hd + d]));
      for (int d = 0; d < hd; ++d) {
        const double ref = acc[d] / sum;
        const size_t at = size_t(i) * q_ld + h * hd + d;
        const double x1 = to_float(r1[at]);
        finite = finite && std::isfinite(x1);
        e1 += (x1 - ref) * (x1 - ref);
        if (hopper) {
          const double x2 = to_float(r2[at]);
          finite = finite && std::isfinite(x2);
          e2 += (x2 - ref) * (x2 - ref);
          e12 += (x2 - x1) * (x2 - x1);
        }
        nr += ref * ref;
      }
    }
  }
  // Every output element written, none NaN.
  for (size_t i = 0; i < r1.size(); ++i) finite = finite && std::isfinite(to_float(r1[i]));
  if (hopper)
    for (size_t i = 0; i < r2.size(); ++i) finite = finite && std::isfinite(to_float(r2[i]));
  const double rel1 = std::sqrt(e1 / nr), rel2 = std::sqrt(e2 / nr), rel12 = std::sqrt(e12 / nr);
  const std::string name = std::string("prefill attention ") + tname<T>() + " n=" + std::to_string(c.n) +
                           " heads=" + std::to_string(c.qh) + "/" + std::to_string(c.kvh) +
                           " start=" + std::to_string(c.start);
  check(finite && rel1 < 1e-2, name + " mma", fmt("rel_err=%.2e", rel1));
  if (hopper)
    check(finite && rel2 < 1e-2 && rel12 < 1e-2, name + " wgmma", fmt("rel_err=%.2e vs_mma=%.2e", rel2, rel12));
  return finite && rel2 < 1e-2 && rel12 < 1e-2;
}

template <typename T>
void prefill_timing(int n, bool hopper) {
  const int hd = 128, qh = 40, kvh = 8, layers = 48;
  const int q_ld = qh * hd;
  Dev<T> dq(size_t(n) * q_ld), dk(size_t(kvh) * n * hd), dv(size_t(kvh) * n * hd), o(size_t(n) * q_ld);
  const Launch l{nullptr, false, 0};
  launch_random_fill<T>(11, 1.f, false, q_ld, 0, 0, n, q_ld, dq.p, q_ld, l);
  launch_random_fill<T>(12, 1.f, false, hd, 0, 0, uint64_t(kvh) * n, hd, dk.p, hd, l);
  launch_random_fill<T>(13, 1.f, false, hd, 0, 0, uint64_t(kvh) * n, hd, dv.p, hd, l);
  Dev<int32_t> st(3);  // position, token, cache base
  st.put({0, 0, 0});
  AttentionArgs<T> a;
  a.q = dq.p, a.k_cache = dk.p, a.v_cache = dv.p, a.cap = n, a.state = st.p, a.n = n;
  a.q_heads = qh, a.kv_heads = kvh, a.head_dim = hd, a.out = o.p, a.host_start = 0;
  const double flop = 2.0 * double(n) * n * hd * qh;  // causal: half of 4·n²·hd per head
  const double t1 = time_ms([&] { launch_prefill_attention<T>(a, l); }, 5);
  std::string figs = fmt("mma %.3f ms/layer (%.0f TFLOP/s)", t1, flop / t1 / 1e9);
  std::string js = "\"tokens\": " + std::to_string(n) + ", \"layers\": " + std::to_string(layers) +
                   fmt(", \"mma_ms\": %.4f", t1);
  if (hopper) {
    const double t2 = time_ms([&] { launch_prefill_attention_sm90<T>(a, l); }, 5);
    figs += fmt(", wgmma %.3f ms/layer (%.0f TFLOP/s): %.2fx", t2, flop / t2 / 1e9, t1 / t2);
    js += fmt(", \"wgmma_ms\": %.4f", t2);
  }
  timing("prefill attention 14B shapes (40/8 heads) n=" + std::to_string(n) + " fp16", figs, js);
}

// ---------------------------------------------------------------------------
// Decode attention: the combine in the kernel's last block against the
// separate combine kernel, bit for bit.

template <typename T>
void decode_case(int L, int sms, bool timed) {
  const int hd = 128, qh = 40, kvh = 8, cap = L + 5;
  const int parts = decode_parts(sms, kvh);
  Dev<T> dq(size_t(qh) * hd), dk(size_t(kvh) * cap * hd), dv(size_t(kvh) * cap * hd);
  Dev<T> o1(size_t(qh) * hd), o2(size_t(qh) * hd);
  dq.put(random_t<T>(dq.n, 21)), dk.put(random_t<T>(dk.n, 22)), dv.put(random_t<T>(dv.n, 23));
  Dev<float> po(size_t(qh) * parts * hd), pml(size_t(qh) * parts * 2);
  Dev<unsigned> cnt(kvh);
  CU_CHECK(cudaMemset(cnt.p, 0, cnt.n * sizeof(unsigned)));
  Dev<int32_t> st(3);  // position, token, cache base
  st.put({L - 1, 0, 0});
  AttentionArgs<T> a;
  a.q = dq.p, a.k_cache = dk.p, a.v_cache = dv.p, a.cap = cap, a.state = st.p, a.n = 1;
  a.q_heads = qh, a.kv_heads = kvh, a.head_dim = hd;
  DecodeSplits sep{parts, po.p, pml.p, nullptr}, mer{parts, po.p, pml.p, cnt.p};
  const Launch l{nullptr, false, sms};
  o1.poison(), o2.poison();
  a.out = o1.p;
  launch_decode_attention<T>(a, sep, l);
  a.out = o2.p;
  launch_decode_attention<T>(a, mer, l);
  launch_decode_attention<T>(a, mer, l);  // twice: the counters must have been reset
  CU_CHECK(cudaDeviceSynchronize());
  const auto r1 = o1.get(), r2 = o2.get();
  bool finite = true;
  for (const T& x : r1) finite = finite && std::isfinite(to_float(x));
  const bool same = std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(T)) == 0;
  check(finite && same, std::string("decode attention combine merged = separate ") + tname<T>() +
                            " L=" + std::to_string(L), same ? "identical" : "differ");
  if (!timed) return;
  a.out = o1.p;
  const double t1 = time_ms([&] { launch_decode_attention<T>(a, sep, l); }, 7, 20);
  const double t2 = time_ms([&] { launch_decode_attention<T>(a, mer, l); }, 7, 20);
  const double bytes = 2.0 * kvh * double(L) * hd * sizeof(T);
  timing("decode attention 14B shapes L=" + std::to_string(L) + " fp16",
         fmt("separate %.1f us (%.2f TB/s), merged %.1f us (%.2f TB/s)", t1 * 1e3, bytes / t1 / 1e9,
             t2 * 1e3, bytes / t2 / 1e9),
         fmt("\"separate_us\": %.2f, \"merged_us\": %.2f, \"bytes\": %.0f", t1 * 1e3, t2 * 1e3, bytes));
}

// ---------------------------------------------------------------------------
// One-token projections: the stream form against the warp form (and the
// separate RMSNorm kernel), bit for bit; then both against a pure read of
// the same bytes.

// Reads every 16-byte chunk of n bytes once, the floor of any matrix-vector
// product over them.
__global__ void read_floor_kernel(const uint4* __restrict__ p, size_t chunks, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < chunks;
       i += size_t(gridDim.x) * blockDim.x) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;  // keeps the loads
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct Shape2 {
  const char* name;
  int rows, cols;
};

template <typename T>
void gemv_checks(int sms, bool quick) {
  const Launch l{nullptr, false, sms};
  // Shapes of Qwen2.5-14B at tp=1, and small odd ones.
  std::vector<Shape2> shapes = {{"qkv", 7168, 5120},   {"o", 5120, 5120},       {"gate_up", 27648, 5120},
                                {"down", 5120, 13824}, {"lm_head", 152064, 5120}, {"odd", 1000 + 3, 5120 + 8},
                                {"tiny", 97, 64}};
  if (quick) shapes = {{"odd", 1003, 5128}, {"tiny", 97, 64}};
  for (const Shape2& sh : shapes) {
    const size_t wn = size_t(sh.rows) * sh.cols;
    // Copies of the weights, so that timed runs read memory and not L2.
    const int copies = int(std::max<size_t>(1, std::min<size_t>(4, (size_t(400) << 20) / (wn * sizeof(T)))));
    Dev<T> w(wn * copies), x(sh.cols), norm(sh.cols), xr(sh.cols), h(sh.cols);
    // Weights generated on the device (the random-weight spec's generator).
    launch_random_fill<T>(31, 1.f / std::sqrt(float(sh.cols)), false, sh.cols, 0, 0,
                          uint64_t(sh.rows) * copies, sh.cols, w.p, sh.cols, l);
    x.put(random_t<T>(sh.cols, 32, 3.f));
    norm.put(random_t<T>(sh.cols, 33, 1.f));
    Dev<float> y1(sh.rows), y2(sh.rows);
    Linear<T> W{w.p, sh.rows, sh.cols};
    const GemvInput<T> plain{x.p, nullptr, 0.f}, normed{x.p, norm.p, 1e-5f};
    // Plain: y = W x.
    y1.poison(), y2.poison();
    linear_gemv<T>(W, x.p, y1.p, l);
    stream_gemv<T>(W, plain, y2.p, l);
    CU_CHECK(cudaDeviceSynchronize());
    const auto a1 = y1.get(), a2 = y2.get();
    bool finite = true;
    for (float f : a1) finite = finite && std::isfinite(f);
    check(finite && same_bits(a1, a2), std::string("matrix-vector stream = warp ") + tname<T>() + " " + sh.name,
          fmt("%.0fx%.0f", sh.rows, sh.cols));
    // Normalised input: the fused RMSNorm = rmsnorm kernel, then the warp form.
    if (sh.cols % 8 == 0) {
      launch_rmsnorm<T, float>(x.p, nullptr, norm.p, h.p, 1, sh.cols, 1e-5f, l);
      y1.poison(), y2.poison();
      linear_gemv<T>(W, h.p, y1.p, l);
      stream_gemv<T>(W, normed, y2.p, l);
      CU_CHECK(cudaDeviceSynchronize());
      check(same_bits(y1.get(), y2.get()),
            std::string("matrix-vector stream+RMSNorm = rmsnorm, warp ") + tname<T>() + " " + sh.name, "");
    }
    // Residual: xr = T(xr + T(W x)) against the host's rounding of the warp form's sums.
    if (sh.rows == sh.cols) {
      const auto x0 = random_t<T>(sh.cols, 34, 2.f);
      xr.put(x0);
      stream_gemv_residual<T>(W, plain, xr.p, l);
      CU_CHECK(cudaDeviceSynchronize());
      const auto got = xr.get();
      std::vector<T> want(x0.size());
      for (size_t i = 0; i < want.size(); ++i)
        want[i] = to_t<T>(to_float(x0[i]) + to_float(to_t<T>(a1[i])));
      check(same_bits(got, want), std::string("matrix-vector stream residual add ") + tname<T>() + " " + sh.name, "");
    }
    if (std::string(sh.name) == "gate_up" || std::string(sh.name) == "odd") {
      const int inter = sh.rows / 2;
      Dev<T> act1(inter), act2(inter);
      Linear<T> G{w.p, 2 * inter, sh.cols};
      linear_gemv_gate_up<T>(G, h.p, act1.p, l);
      stream_gemv_gate_up<T>(G, GemvInput<T>{h.p, nullptr, 0.f}, act2.p, l);
      CU_CHECK(cudaDeviceSynchronize());
      check(same_bits(act1.get(), act2.get()), std::string("gate|up + SwiGLU stream = warp ") + tname<T>() + " " + sh.name, "");
    }
    if (std::string(sh.name) == "qkv") {
      const int qh = 40, kvh = 8, hd = 128, cap = 64;
      Dev<T> bias(sh.rows), q1(qh * hd), q2(qh * hd), kc1(kvh * cap * hd), kc2(kvh * cap * hd),
          vc1(kvh * cap * hd), vc2(kvh * cap * hd);
      bias.put(random_t<T>(sh.rows, 35, 0.1f));
      Dev<float> inv(hd / 2);
      std::vector<float> iv(hd / 2);
      for (int i = 0; i < hd / 2; ++i) iv[i] = 1.0f / float(std::pow(1e6, double(2 * i) / hd));
      inv.put(iv);
      Dev<int32_t> st(3);  // position, token, cache base
      st.put({41, 0, 0});
      kc1.poison(), kc2.poison(), vc1.poison(), vc2.poison();
      QkvTarget<T> t1{bias.p, st.p, nullptr, nullptr, inv.p, qh, kvh, hd, q1.p, kc1.p, vc1.p, cap};
      QkvTarget<T> t2{bias.p, st.p, nullptr, nullptr, inv.p, qh, kvh, hd, q2.p, kc2.p, vc2.p, cap};
      linear_gemv_qkv_rope<T>(W, h.p, t1, l);
      stream_gemv_qkv_rope<T>(W, GemvInput<T>{h.p, nullptr, 0.f}, t2, l);
      CU_CHECK(cudaDeviceSynchronize());
      check(same_bits(q1.get(), q2.get()) && same_bits(kc1.get(), kc2.get()) &&
                same_bits(vc1.get(), vc2.get()),
            std::string("q|k|v + RoPE + cache stream = warp ") + tname<T>(), "");
    }
    if (quick || std::string(sh.name) == "odd" || std::string(sh.name) == "tiny" || !std::is_same<T, __half>::value)
      continue;
    // Timing: rotate over the copies.
    int i1 = 0, i2 = 0, i3 = 0;
    const double bytes = double(wn) * sizeof(T);
    const double tw = time_ms([&] {
      linear_gemv<T>(Linear<T>{w.p + wn * (i1++ % copies), sh.rows, sh.cols}, x.p, y1.p, l);
    }, 7, 20);
    const double ts = time_ms([&] {
      stream_gemv<T>(Linear<T>{w.p + wn * (i2++ % copies), sh.rows, sh.cols}, plain, y2.p, l);
    }, 7, 20);
    const double tn = time_ms([&] {
      stream_gemv<T>(Linear<T>{w.p + wn * (i2++ % copies), sh.rows, sh.cols}, normed, y2.p, l);
    }, 7, 20);
    Dev<unsigned> sink(1);
    const double tr = time_ms([&] {
      read_floor_kernel<<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(w.p + wn * (i3++ % copies)),
                                          wn * sizeof(T) / 16, sink.p);
    }, 7, 20);
    timing(std::string("matrix-vector ") + sh.name + " " + std::to_string(sh.rows) + "x" +
               std::to_string(sh.cols) + " fp16",
           fmt("warp %.2f TB/s, stream %.2f TB/s (+norm %.2f), read floor %.2f TB/s", bytes / tw / 1e9,
               bytes / ts / 1e9, bytes / tn / 1e9, bytes / tr / 1e9),
           fmt("\"warp_us\": %.2f, \"stream_us\": %.2f, \"stream_norm_us\": %.2f, \"read_us\": %.2f", tw * 1e3,
               ts * 1e3, tn * 1e3, tr * 1e3) +
               fmt(", \"bytes\": %.0f", bytes));
  }
}

double copy_bandwidth() {
  const size_t n = size_t(1) << 31;  // 2 GiB
  Dev<unsigned char> a(n), b(n);
  CU_CHECK(cudaMemset(a.p, 1, n));
  const double t = time_ms([&] { CU_CHECK(cudaMemcpyAsync(b.p, a.p, n, cudaMemcpyDeviceToDevice)); }, 9);
  const double bw = 2.0 * double(n) / t / 1e9;  // TB/s: read + write
  timing("copy bandwidth (device to device, 2 GiB, read + write)", fmt("%.3f TB/s", bw),
         fmt("\"tb_per_s\": %.4f", bw));
  return bw;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lmdref_kernel_check OUT.json [quick]\n");
    return 2;
  }
  const bool quick = argc > 2 && std::string(argv[2]) == "quick";
  std::string hopper_state = "absent";
  try {
    int dev = 0, sms = 0;
    CU_CHECK(cudaGetDevice(&dev));
    CU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaDeviceProp prop;
    CU_CHECK(cudaGetDeviceProperties(&prop, dev));
    std::printf("kernel check on %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, sms);
    const bool hopper = prefill_sm90_ready(128);
    std::printf("Hopper prefill attention: %s\n", hopper ? "built and runnable here" : "not runnable here");

    bool hopper_ok = true;
    const AttnCase cases[] = {{1, 40, 8, 0},    {64, 40, 8, 0},  {129, 40, 8, 0},  {300, 40, 8, 200},
                              {777, 12, 2, 0},  {1000, 40, 8, 0}, {2111, 5, 1, 0}, {1000, 40, 8, 1500}};
    uint64_t seed = 100;
    for (const AttnCase& c : cases) {
      if (quick && c.n > 1000) continue;
      hopper_ok = prefill_case<__half>(c, hopper, seed++) && hopper_ok;
      hopper_ok = prefill_case<__nv_bfloat16>(c, hopper, seed++) && hopper_ok;
    }
    if (hopper) hopper_state = hopper_ok ? "ok" : "FAIL";

    for (int L : {1, 63, 64, 65, 5000, 10400}) {
      decode_case<__half>(L, sms, !quick && L == 10400);
      decode_case<__nv_bfloat16>(L, sms, false);
    }
    gemv_checks<__half>(sms, quick);
    gemv_checks<__nv_bfloat16>(sms, true);
    if (!quick) {
      copy_bandwidth();
      for (int n : {10000, 20000}) prefill_timing<__half>(n, hopper && hopper_ok);
    }
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL kernel check stopped: %s\n", e.what());
  }
  if (FILE* f = std::fopen(argv[1], "w")) {
    std::fprintf(f, "{\"hopper_prefill_attention\": \"%s\", \"checks\": %d, \"failed\": %d, \"results\": [\n%s\n]}\n",
                 hopper_state.c_str(), g_checks, g_failed, g_json.c_str());
    std::fclose(f);
  }
  std::printf("kernel check: %d/%d ok; hopper_prefill_attention=%s\n", g_checks - g_failed, g_checks,
              hopper_state.c_str());
  return g_failed ? 1 : 0;
}
