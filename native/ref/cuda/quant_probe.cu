// The quantized weights' debug entry points (quant_probe.h): one rank's
// weights loaded by load_rank_weights, as the engine loads them, and the
// kernels run on them one at a time.
#include "quant_probe.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "device_buffers.h"
#include "kernels.h"
#include "linear.h"
#include "model_shape.h"
#include "weights.h"

namespace lmdcu {
namespace {

template <typename T>
__global__ void to_float_kernel(const T* src, int64_t n, float* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = to_f(src[i]);
}

class ProbeBase {
 public:
  virtual ~ProbeBase() = default;
  virtual void shape(int which, int32_t* rows, int32_t* cols) const = 0;
  virtual void matrix(int layer, int which, int half, uint8_t* q, float* scale, float* deq) = 0;
  virtual void run(const lmdref_cuda_probe_gemv& g) = 0;
};

template <typename T>
class Probe : public ProbeBase {
 public:
  Probe(const lmdref_cuda_model& m, const lmdref_cuda_weights* wts, const std::string& format,
        bool q_head, int tp, int rank, int device)
      : s_(make_shape(m, tp, format, q_head)) {
    if (format.empty()) throw Error(LMD_ERR_INVALID, "probe: a weight format (int8 or fp8) is needed");
    if (rank < 0 || rank >= tp) throw Error(LMD_ERR_INVALID, "probe: rank must be in [0, tp)");
    CU_CHECK(cudaSetDevice(device));
    CU_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
    const int per = int(ceil_div(s_.V, tp));
    const int v0 = std::min(s_.V, rank * per), v1 = std::min(s_.V, v0 + per);
    WeightFeed feed(wts);
    load_rank_weights<T>(s_, rank, v0, v1, feed, st_, w_);
    // RoPE inverse frequencies as model_setup.cu computes them.
    std::vector<float> inv(s_.hd / 2);
    for (int i = 0; i < s_.hd / 2; ++i) {
      const float e = float(2 * i) / float(s_.hd);
      inv[i] = 1.0f / float(std::pow(double(float(s_.theta)), double(e)));
    }
    inv_freq_.alloc(inv.size() * sizeof(float));
    CU_CHECK(cudaMemcpy(inv_freq_.p, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Probe() override {
    if (st_) {
      cudaStreamSynchronize(st_);
      cudaStreamDestroy(st_);
    }
  }

  void shape(int which, int32_t* rows, int32_t* cols) const override {
    const Linear<T>& W = pick(0, which);
    *rows = W.rows;
    *cols = W.cols;
  }

  void matrix(int layer, int which, int half, uint8_t* q, float* scale, float* deq) override {
    const Linear<T>& W = pick(layer, which);
    const size_t n = size_t(W.rows) * W.cols;
    CU_CHECK(cudaMemcpyAsync(q, W.q, n, cudaMemcpyDeviceToHost, st_));
    CU_CHECK(cudaMemcpyAsync(scale, W.scale, size_t(W.rows) * sizeof(float),
                             cudaMemcpyDeviceToHost, st_));
    if (deq) {
      if (which == LMDREF_PROBE_LM_HEAD || !W.deq)
        throw Error(LMD_ERR_INVALID, "probe: the lm_head has no prefill scratch");
      if (half != 0 && half != 1) throw Error(LMD_ERR_INVALID, "probe: half must be 0 or 1");
      // As model_step.cu's prefetch: every matrix of the layer into the
      // half, then the GEMMs read theirs.
      const LayerWeights<T>& L = w_.layers[layer];
      for (const Linear<T>* M : {&L.qkv, &L.o, &L.gate_up, &L.down})
        linear_prepare<T>(w_.in_half(*M, half), Launch{st_, false});
      to_host(w_.in_half(W, half).deq, int64_t(n), deq);
    }
    CU_CHECK(cudaStreamSynchronize(st_));
  }

  void run(const lmdref_cuda_probe_gemv& g) override {
    const Linear<T>& W = pick(g.layer, g.which);
    if (!g.x || !g.out) throw Error(LMD_ERR_INVALID, "probe: x and out are needed");
    const Launch l{st_, false};
    DevBuf x, norm, out, f32;
    upload(g.x, W.cols, x);
    if (g.norm) upload(g.norm, W.cols, norm);
    const GemvInput<T> in{ptr<T>(x), g.norm ? ptr<T>(norm) : nullptr, g.eps};
    switch (g.form) {
      case LMDREF_PROBE_Y:
        f32.alloc(size_t(W.rows) * sizeof(float));
        quant_gemv<T>(W, in, ptr<float>(f32), l);
        CU_CHECK(cudaMemcpyAsync(g.out, f32.p, f32.bytes, cudaMemcpyDeviceToHost, st_));
        break;
      case LMDREF_PROBE_RESIDUAL:
        if (!g.residual) throw Error(LMD_ERR_INVALID, "probe: the residual form needs residual");
        upload(g.residual, W.rows, out);
        quant_gemv_residual<T>(W, in, ptr<T>(out), l);
        to_host(ptr<T>(out), W.rows, g.out);
        break;
      case LMDREF_PROBE_GATE_UP_ACT:
        if (g.which != LMDREF_PROBE_GATE_UP) throw Error(LMD_ERR_INVALID, "probe: SwiGLU needs gate|up");
        out.alloc(size_t(W.rows / 2) * sizeof(T));
        quant_gemv_gate_up<T>(W, in, ptr<T>(out), l);
        to_host(ptr<T>(out), W.rows / 2, g.out);
        break;
      case LMDREF_PROBE_QKV_ROPE:
        run_qkv(g, W, in);
        break;
      default:
        throw Error(LMD_ERR_INVALID, "probe: unknown form " + std::to_string(g.form));
    }
    CU_CHECK(cudaStreamSynchronize(st_));
  }

 private:
  const Linear<T>& pick(int layer, int which) const {
    if (which == LMDREF_PROBE_LM_HEAD) {
      if (!w_.lm_head.quantized())
        throw Error(LMD_ERR_INVALID, "probe: the lm_head is not quantized (quantize_lm_head=0)");
      return w_.lm_head;
    }
    if (layer < 0 || layer >= s_.layers) throw Error(LMD_ERR_INVALID, "probe: no such layer");
    const LayerWeights<T>& L = w_.layers[layer];
    switch (which) {
      case LMDREF_PROBE_QKV: return L.qkv;
      case LMDREF_PROBE_O: return L.o;
      case LMDREF_PROBE_GATE_UP: return L.gate_up;
      case LMDREF_PROBE_DOWN: return L.down;
      default: throw Error(LMD_ERR_INVALID, "probe: unknown matrix " + std::to_string(which));
    }
  }

  // n floats from the host into dst as T (round to nearest).
  void upload(const float* src, int64_t n, DevBuf& dst) {
    DevBuf f;
    f.alloc(size_t(n) * sizeof(float));
    CU_CHECK(cudaMemcpyAsync(f.p, src, f.bytes, cudaMemcpyHostToDevice, st_));
    dst.alloc(size_t(n) * sizeof(T));
    launch_convert<T>(ptr<float>(f), uint64_t(n), 0, 1, uint64_t(n), ptr<T>(dst), uint64_t(n),
                      Launch{st_, false});
    CU_CHECK(cudaStreamSynchronize(st_));
  }

  void to_host(const T* src, int64_t n, float* dst) {
    DevBuf f;
    f.alloc(size_t(n) * sizeof(float));
    launch(Launch{st_, false}, to_float_kernel<T>, 256, 256, 0, src, n, ptr<float>(f));
    CU_CHECK(cudaMemcpyAsync(dst, f.p, f.bytes, cudaMemcpyDeviceToHost, st_));
    CU_CHECK(cudaStreamSynchronize(st_));
  }

  // q|k|v of one token at position g.pos: q from q_out, k and v from the
  // cache row they were written to.
  void run_qkv(const lmdref_cuda_probe_gemv& g, const Linear<T>& W, const GemvInput<T>& in) {
    if (g.which != LMDREF_PROBE_QKV) throw Error(LMD_ERR_INVALID, "probe: RoPE needs q|k|v");
    if (g.pos < 0) throw Error(LMD_ERR_INVALID, "probe: pos must be >= 0");
    const int cap = g.pos + 1, hd = s_.hd;
    DevBuf state, qo, kc, vc;
    const int32_t st[4] = {g.pos, 0, 0, 0};
    state.alloc(sizeof st);
    CU_CHECK(cudaMemcpy(state.p, st, sizeof st, cudaMemcpyHostToDevice));
    qo.alloc(size_t(s_.Ql) * sizeof(T));
    kc.alloc(size_t(s_.KVl) * cap * sizeof(T));
    vc.alloc(size_t(s_.KVl) * cap * sizeof(T));
    QkvTarget<T> t;
    t.bias = w_.layers[g.layer].qkv_bias;
    t.state = ptr<int32_t>(state);
    t.inv_freq = ptr<float>(inv_freq_);
    t.q_heads = s_.qh;
    t.kv_heads = s_.kvh;
    t.head_dim = hd;
    t.q_out = ptr<T>(qo);
    t.k_cache = ptr<T>(kc);
    t.v_cache = ptr<T>(vc);
    t.cap = cap;
    quant_gemv_qkv_rope<T>(W, in, t, Launch{st_, false});
    to_host(ptr<T>(qo), s_.Ql, g.out);
    for (int h = 0; h < s_.kvh; ++h) {
      const int64_t at = (int64_t(h) * cap + g.pos) * hd;
      to_host(ptr<T>(kc) + at, hd, g.out + s_.Ql + h * hd);
      to_host(ptr<T>(vc) + at, hd, g.out + s_.Ql + s_.KVl + h * hd);
    }
    (void)W;
  }

  Shape s_;
  cudaStream_t st_ = nullptr;
  RankWeights<T> w_;
  DevBuf inv_freq_;
};

// Random bytes (a fixed pattern: the speed does not depend on the values),
// unit scales.
__global__ void fill_kernel(uint8_t* q, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    q[i] = uint8_t((i * 2654435761u) >> 13) & 0x77;  // no fp8 NaN (0x7f, 0xff)
}

template <typename T>
double speed(QFormat f, int form, int rows, int cols, int qh, int kvh, int hd, bool with_norm,
             int iters) {
  int dev = 0;
  CU_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CU_CHECK(cudaGetDeviceProperties(&prop, dev));
  cudaStream_t st = nullptr;
  CU_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  struct Guard {
    cudaStream_t s;
    cudaEvent_t e[2] = {nullptr, nullptr};
    ~Guard() {
      cudaStreamSynchronize(s);
      for (cudaEvent_t x : e)
        if (x) cudaEventDestroy(x);
      cudaStreamDestroy(s);
    }
  } guard{st};
  const Launch l{st, prop.major >= 9, prop.multiProcessorCount};
  const size_t bytes = size_t(rows) * cols;
  // Enough copies that they do not fit in L2 together (at least 4x its size).
  const int copies = int(std::max<size_t>(2, (size_t(prop.l2CacheSize) * 4 + bytes - 1) / bytes));
  std::vector<DevBuf> q(copies);
  for (DevBuf& b : q) {
    b.alloc(bytes);
    launch(Launch{st, false}, fill_kernel, 1024, 256, 0, ptr<uint8_t>(b), int64_t(bytes));
  }
  std::vector<float> ones(rows, 1.f / 64);
  DevBuf scale, x, norm, out, bias, state, inv, qo, kc, vc;
  scale.alloc(rows * sizeof(float));
  CU_CHECK(cudaMemcpy(scale.p, ones.data(), rows * sizeof(float), cudaMemcpyHostToDevice));
  x.alloc(size_t(cols) * sizeof(T));
  norm.alloc(size_t(cols) * sizeof(T));
  CU_CHECK(cudaMemset(x.p, 0, x.bytes));  // zeros: a finite input of any norm weights
  CU_CHECK(cudaMemset(norm.p, 0, norm.bytes));
  out.alloc(size_t(rows) * sizeof(float));
  CU_CHECK(cudaMemset(out.p, 0, out.bytes));
  QkvTarget<T> t;
  if (form == LMDREF_PROBE_QKV_ROPE) {
    if (rows != (qh + 2 * kvh) * hd) throw Error(LMD_ERR_INVALID, "probe: rows != (qh + 2 kvh) hd");
    bias.alloc(size_t(rows) * sizeof(T));
    CU_CHECK(cudaMemset(bias.p, 0, bias.bytes));
    state.alloc(4 * sizeof(int32_t));
    CU_CHECK(cudaMemset(state.p, 0, state.bytes));
    inv.alloc(size_t(hd / 2) * sizeof(float));
    CU_CHECK(cudaMemset(inv.p, 0, inv.bytes));
    qo.alloc(size_t(qh) * hd * sizeof(T));
    kc.alloc(size_t(kvh) * hd * sizeof(T));
    vc.alloc(size_t(kvh) * hd * sizeof(T));
    t.bias = ptr<T>(bias);
    t.state = ptr<int32_t>(state);
    t.inv_freq = ptr<float>(inv);
    t.q_heads = qh;
    t.kv_heads = kvh;
    t.head_dim = hd;
    t.q_out = ptr<T>(qo);
    t.k_cache = ptr<T>(kc);
    t.v_cache = ptr<T>(vc);
    t.cap = 1;
  }
  const GemvInput<T> in{ptr<T>(x), with_norm ? ptr<T>(norm) : nullptr, 1e-6f};
  auto call = [&](int i) {
    Linear<T> W;
    W.rows = rows;
    W.cols = cols;
    W.q = ptr<uint8_t>(q[i % copies]);
    W.scale = ptr<float>(scale);
    W.format = f;
    switch (form) {
      case LMDREF_PROBE_Y: quant_gemv<T>(W, in, ptr<float>(out), l); break;
      case LMDREF_PROBE_RESIDUAL: quant_gemv_residual<T>(W, in, ptr<T>(out), l); break;
      case LMDREF_PROBE_GATE_UP_ACT: quant_gemv_gate_up<T>(W, in, ptr<T>(out), l); break;
      case LMDREF_PROBE_QKV_ROPE: quant_gemv_qkv_rope<T>(W, in, t, l); break;
      default: throw Error(LMD_ERR_INVALID, "probe: unknown form " + std::to_string(form));
    }
  };
  for (int i = 0; i < copies; ++i) call(i);  // warm-up
  CU_CHECK(cudaEventCreate(&guard.e[0]));
  CU_CHECK(cudaEventCreate(&guard.e[1]));
  CU_CHECK(cudaEventRecord(guard.e[0], st));
  for (int i = 0; i < iters; ++i) call(i);
  CU_CHECK(cudaEventRecord(guard.e[1], st));
  CU_CHECK(cudaEventSynchronize(guard.e[1]));
  float ms = 0.f;
  CU_CHECK(cudaEventElapsedTime(&ms, guard.e[0], guard.e[1]));
  return double(ms) * 1e-3 / iters;
}

ProbeBase* probe_of(void* p) {
  if (!p) throw Error(LMD_ERR_INVALID, "probe: NULL probe");
  return static_cast<ProbeBase*>(p);
}

}  // namespace
}  // namespace lmdcu

#define LMDREF_PROBE_EXPORT extern "C" __attribute__((visibility("default")))

LMDREF_PROBE_EXPORT int32_t lmdref_cuda_probe_open(const lmdref_cuda_model* m,
                                                   const lmdref_cuda_weights* w,
                                                   const char* dtype, const char* format,
                                                   int32_t quantize_lm_head, int32_t tp,
                                                   int32_t rank, int32_t device, void** out,
                                                   char* err, size_t cap) {
  using namespace lmdcu;
  return lmdrive::guarded(err, cap, [&] {
    if (!m || !w || !dtype || !format || !out) throw Error(LMD_ERR_INVALID, "probe: NULL argument");
    *out = nullptr;
    const std::string dt = dtype;
    std::unique_ptr<ProbeBase> p;
    if (dt == "fp16")
      p.reset(new Probe<__half>(*m, w, format, quantize_lm_head != 0, tp, rank, device));
    else if (dt == "bf16")
      p.reset(new Probe<__nv_bfloat16>(*m, w, format, quantize_lm_head != 0, tp, rank, device));
    else
      throw Error(LMD_ERR_INVALID, "probe: dtype must be fp16 or bf16");
    *out = p.release();
  });
}

LMDREF_PROBE_EXPORT int32_t lmdref_cuda_probe_shape(void* probe, int32_t which, int32_t* rows,
                                                    int32_t* cols, char* err, size_t cap) {
  using namespace lmdcu;
  return lmdrive::guarded(err, cap, [&] {
    if (!rows || !cols) throw Error(LMD_ERR_INVALID, "probe: NULL argument");
    probe_of(probe)->shape(which, rows, cols);
  });
}

LMDREF_PROBE_EXPORT int32_t lmdref_cuda_probe_matrix(void* probe, int32_t layer, int32_t which,
                                                     int32_t half, uint8_t* q, float* scale,
                                                     float* deq, char* err, size_t cap) {
  using namespace lmdcu;
  return lmdrive::guarded(err, cap, [&] {
    if (!q || !scale) throw Error(LMD_ERR_INVALID, "probe: NULL argument");
    probe_of(probe)->matrix(layer, which, half, q, scale, deq);
  });
}

LMDREF_PROBE_EXPORT int32_t lmdref_cuda_probe_run(void* probe, const lmdref_cuda_probe_gemv* g,
                                                  char* err, size_t cap) {
  using namespace lmdcu;
  return lmdrive::guarded(err, cap, [&] {
    if (!g) throw Error(LMD_ERR_INVALID, "probe: NULL argument");
    probe_of(probe)->run(*g);
  });
}

LMDREF_PROBE_EXPORT void lmdref_cuda_probe_close(void* probe) {
  delete static_cast<lmdcu::ProbeBase*>(probe);
}

LMDREF_PROBE_EXPORT int32_t lmdref_cuda_probe_speed(const char* dtype, const char* format,
                                                    int32_t form, int32_t rows, int32_t cols,
                                                    int32_t q_heads, int32_t kv_heads,
                                                    int32_t head_dim, int32_t norm, int32_t iters,
                                                    double* seconds, char* err, size_t cap) {
  using namespace lmdcu;
  return lmdrive::guarded(err, cap, [&] {
    if (!dtype || !format || !seconds) throw Error(LMD_ERR_INVALID, "probe: NULL argument");
    if (rows < 1 || cols < 16 || iters < 1) throw Error(LMD_ERR_INVALID, "probe: bad sizes");
    const std::string fmt = format, dt = dtype;
    if (fmt != "int8" && fmt != "fp8") throw Error(LMD_ERR_INVALID, "probe: format int8 or fp8");
    const QFormat f = fmt == "int8" ? QFormat::Int8 : QFormat::Fp8;
    if (dt == "fp16")
      *seconds = speed<__half>(f, form, rows, cols, q_heads, kv_heads, head_dim, norm != 0, iters);
    else if (dt == "bf16")
      *seconds = speed<__nv_bfloat16>(f, form, rows, cols, q_heads, kv_heads, head_dim, norm != 0,
                                      iters);
    else
      throw Error(LMD_ERR_INVALID, "probe: dtype must be fp16 or bf16");
  });
}
