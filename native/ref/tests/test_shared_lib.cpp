// The built liblmdrive_ref.so as a caller sees it: loaded with dlopen, its
// public symbols resolve (lmdrive_get_api and the debug entry points
// lmdrive_ref_logits and lmdrive_ref_quantize), nothing internal leaks, and
// the table works.
#include <dlfcn.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "check.h"
#include "lmdrive.h"

typedef int32_t (*logits_fn)(const char*, const int32_t*, uint32_t, uint32_t, float*, lmd_error*);

TEST_CASE(loads_and_runs) {
  if (check::args().size() < 2) {
    check::fail(__FILE__, __LINE__, "usage: test_shared_lib path/to/liblmdrive_ref.so");
    return;
  }
  void* h = dlopen(check::args()[1].c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    check::fail(__FILE__, __LINE__, std::string("dlopen: ") + dlerror());
    return;
  }
  auto get_api = reinterpret_cast<const lmd_api* (*)(void)>(dlsym(h, "lmdrive_get_api"));
  auto logits = reinterpret_cast<logits_fn>(dlsym(h, "lmdrive_ref_logits"));
  CHECK(dlsym(h, "lmdrive_ref_quantize") != nullptr);
  CHECK(get_api != nullptr);
  CHECK(logits != nullptr);
  // Internal and C++ runtime symbols stay hidden.
  CHECK(dlsym(h, "_ZN6lmdref10splitmix64Em") == nullptr);
  CHECK(dlsym(h, "_ZSt4cout") == nullptr);
  CHECK(dlsym(h, "_ZN7lmdrive4shim6now_nsEv") == nullptr);  // the kit, compiled in hidden
  if (!get_api) return;

  const lmd_api* api = get_api();
  CHECK_EQ(api->struct_size, uint32_t(sizeof(lmd_api)));
  CHECK_EQ(api->abi_major, uint32_t(LMDRIVE_ABI_MAJOR));
  CHECK_EQ(api->abi_minor, uint32_t(LMDRIVE_ABI_MINOR));
  CHECK(api->now_ns() > 0);

  lmd_engine* e = nullptr;
  lmd_error err{};
  err.struct_size = sizeof err;
  CHECK_EQ(api->create(R"({"model": "random:tiny", "seed": 1, "threads": 2})", &e, &err), LMD_OK);
  lmd_info info{};
  info.struct_size = sizeof info;
  CHECK_EQ(api->info(e, &info, &err), LMD_OK);
  CHECK_EQ(std::string(info.backend), std::string("ref-cpu"));
  CHECK(std::strncmp(info.version, "lmdrive-ref ", 12) == 0);
  CHECK_EQ(std::string(info.model), std::string("random:tiny seed=1"));
  CHECK_EQ(std::string(info.dtype), std::string("fp32"));
  CHECK(info.vocab_size == 151936 && info.tp_size == 1 && info.n_devices == 0);
  CHECK(info.n_eos == 2 && info.eos_ids[0] == 151643 && info.eos_ids[1] == 151645);
  CHECK(info.max_seq_len == 32768 && info.max_input_len == 32767);
  CHECK_EQ(info.caps, uint32_t(LMD_CAP_LOGPROBS | LMD_CAP_WATCH | LMD_CAP_SAMPLING));

  // An older caller's shorter lmd_info gets only the fields it knows.
  unsigned char buf[sizeof(lmd_info) + 16];
  std::memset(buf, 0xAB, sizeof buf);
  lmd_info* small = reinterpret_cast<lmd_info*>(buf);
  small->struct_size = offsetof(lmd_info, backend);
  CHECK_EQ(api->info(e, small, &err), LMD_OK);
  CHECK_EQ(small->vocab_size, 151936u);
  CHECK_EQ(buf[offsetof(lmd_info, backend)], 0xAB);

  int32_t prompt[4] = {1, 2, 3, 4};
  lmd_request req{};
  req.struct_size = sizeof req;
  req.n_prompt = 4;
  req.prompt = prompt;
  req.max_new_tokens = 3;
  req.top_p = 1;
  lmd_stream* s = nullptr;
  CHECK_EQ(api->start(e, &req, &s, &err), LMD_OK);
  lmd_token toks[8];
  lmd_poll p{};
  p.struct_size = sizeof p;
  uint32_t got = 0;
  do {
    CHECK_EQ(api->poll(s, toks + got, nullptr, 8 - got, 1000000000, &p, &err), LMD_OK);
    got += p.n;
  } while (!p.done);
  lmd_result res{};
  res.struct_size = sizeof res;
  CHECK_EQ(api->result(s, &res, &err), LMD_OK);
  CHECK_EQ(res.finish_reason, LMD_FINISH_LENGTH);
  CHECK_EQ(got, 3u);
  api->close(s);
  api->destroy(e);

  std::vector<float> out(2 * 151936);
  CHECK_EQ(logits(R"({"model": "random:tiny", "seed": 1})", prompt, 4, 2, out.data(), &err), LMD_OK);
  CHECK_EQ(logits(R"({"model": "random:tiny"})", prompt, 4, 5, out.data(), &err), LMD_ERR_INVALID);
  CHECK_HAS(err.message, "last_k");
  dlclose(h);
}

TEST_MAIN("test_shared_lib")
