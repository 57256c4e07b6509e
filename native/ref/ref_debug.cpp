#include "ref_debug.h"

#include <string>

#include "engine.h"
#include "export.h"
#include "kit.h"
#include "quantize.h"

extern "C" LMDREF_EXPORT int32_t lmdrive_ref_logits(const char* config_json,
                                                    const int32_t* tokens, uint32_t n,
                                                    uint32_t last_k, float* out, lmd_error* err) {
  using namespace lmdref;
  return guarded(err, [&] {
    if (!tokens || !out) invalid("lmdrive_ref_logits: tokens or out is NULL");
    std::shared_ptr<Engine> e = Engine::create(config_json);
    Backend* b = e->backend();
    if (!b) fail(LMD_ERR_UNSUPPORTED, "lmdrive_ref_logits: calibrate mode computes no logits");
    const uint32_t vocab = e->model().vocab;
    const uint32_t limit = e->limits().max_seq_len;
    if (n < 1) invalid("lmdrive_ref_logits: n must be at least 1");
    if (limit > 0 && n > limit)
      invalid("lmdrive_ref_logits: " + std::to_string(n) + " tokens exceed max_seq_len " +
              std::to_string(limit));
    if (last_k < 1 || last_k > n) invalid("lmdrive_ref_logits: last_k must be in [1, n]");
    for (uint32_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || uint32_t(tokens[i]) >= vocab)
        invalid("lmdrive_ref_logits: token " + std::to_string(i) + " (id " +
                std::to_string(tokens[i]) + ") is outside the vocabulary");
    b->forward(tokens, int(n), 0, int(last_k), out, nullptr);
  });
}

extern "C" LMDREF_EXPORT int32_t lmdrive_ref_quantize(const char* format, const float* w,
                                                      uint64_t rows, uint64_t cols, uint8_t* q,
                                                      float* scales, lmd_error* err) {
  using namespace lmdref;
  return guarded(err, [&] {
    if (!format || !w || !q || !scales) invalid("lmdrive_ref_quantize: NULL argument");
    switch (parse_weight_format(format)) {
      case WeightFormat::Int8:
        quantize_int8(w, rows, cols, reinterpret_cast<int8_t*>(q), scales, "matrix");
        break;
      case WeightFormat::Fp8:
        quantize_fp8(w, rows, cols, q, scales, "matrix");
        break;
      default:
        invalid("lmdrive_ref_quantize: format must be int8 or fp8");
    }
  });
}
