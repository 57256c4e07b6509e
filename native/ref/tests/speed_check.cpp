// Prints (does not assert) CPU speed of random:tiny: prefill of a 2048-token
// prompt and greedy decode, through the ABI as a benchmark would run it.
// usage: ref_speed_check [prompt tokens] [new tokens] [model] [threads]
//        [weights: fp32|int8|int8+lm_head]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "lmdrive.h"

int main(int argc, char** argv) {
  const lmd_api* api = lmdrive_get_api();
  const int n_prompt = argc > 1 ? std::atoi(argv[1]) : 2048;
  const int n_new = argc > 2 ? std::atoi(argv[2]) : 64;
  const std::string model = argc > 3 ? argv[3] : "random:tiny";
  const int threads = argc > 4 ? std::atoi(argv[4]) : 0;  // 0: the engine's default
  const std::string weights = argc > 5 ? argv[5] : "fp32";
  std::string cfg = "{\"model\": \"" + model + "\", \"seed\": 1, \"threads\": " +
                    std::to_string(threads);
  if (weights == "int8") cfg += ", \"weights\": \"int8\"";
  else if (weights == "int8+lm_head") cfg += ", \"weights\": \"int8\", \"quantize_lm_head\": true";
  else if (weights != "fp32") {
    std::fprintf(stderr, "weights must be fp32, int8 or int8+lm_head, got %s\n", weights.c_str());
    return 2;
  }
  cfg += "}";
  lmd_error err{};
  err.struct_size = sizeof err;
  lmd_engine* e = nullptr;
  const int64_t t0 = api->now_ns();
  if (api->create(cfg.c_str(), &e, &err) != LMD_OK) {
    std::fprintf(stderr, "create: %s\n", err.message);
    return 1;
  }
  const int64_t t1 = api->now_ns();
  std::vector<int32_t> prompt(n_prompt);
  for (int i = 0; i < n_prompt; ++i) prompt[i] = (i * 7919 + 1) % 151936;
  lmd_request req{};
  req.struct_size = sizeof req;
  req.n_prompt = uint32_t(n_prompt);
  req.prompt = prompt.data();
  req.max_new_tokens = uint32_t(n_new);
  req.ignore_eos = 1;
  req.top_p = 1;
  lmd_stream* s = nullptr;
  if (api->start(e, &req, &s, &err) != LMD_OK) {
    std::fprintf(stderr, "start: %s\n", err.message);
    return 1;
  }
  std::vector<lmd_token> toks(64);
  lmd_poll p{};
  p.struct_size = sizeof p;
  do {
    api->poll(s, toks.data(), nullptr, 64, 1000000000, &p, &err);
  } while (!p.done);
  lmd_result r{};
  r.struct_size = sizeof r;
  api->result(s, &r, &err);
  api->close(s);
  api->destroy(e);

  const double prefill = double(r.t_first_ns - r.t_submit_ns) / 1e9;
  const double decode = double(r.t_last_ns - r.t_first_ns) / 1e9;
  std::printf("%s (%s weights) on %u hardware threads: load %.2f s\n", model.c_str(), weights.c_str(),
              std::thread::hardware_concurrency(), double(t1 - t0) / 1e9);
  std::printf("prefill %d tokens: %.3f s = %.0f tok/s (time to first token)\n", n_prompt, prefill,
              n_prompt / prefill);
  std::printf("decode %u tokens: %.3f s = %.1f tok/s\n", r.output_tokens - 1, decode,
              (r.output_tokens - 1) / decode);
  return 0;
}
