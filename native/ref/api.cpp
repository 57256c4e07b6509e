// liblmdrive_ref.so's entry point: the kit's lmd_api table (native/shimcommon)
// bound to the reference engine. The table catches everything; nothing
// throws or aborts across the boundary.
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "export.h"
#include "kit.h"
#include "lmdrive_shim/api.h"
#include "stream.h"
#include "version.h"

namespace lmdref {
namespace {

// The reference engine behind the kit's engine interface.
class TableEngine : public lmdrive::shim::ShimEngine {
 public:
  explicit TableEngine(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
  void fill_info(lmd_info& info) override { engine_->info(&info); }
  std::unique_ptr<lmdrive::shim::ShimStream> start(const RequestSpec& req) override {
    return std::move(engine_->start({req})[0]);
  }
  int max_streams() const override { return engine_->max_sequences(); }
  // One scheduler step takes them all in.
  std::vector<std::unique_ptr<lmdrive::shim::ShimStream>> start_batch(
      const std::vector<RequestSpec>& reqs) override {
    std::vector<std::unique_ptr<lmdrive::shim::ShimStream>> out;
    for (auto& s : engine_->start(reqs)) out.push_back(std::move(s));
    return out;
  }

 private:
  std::shared_ptr<Engine> engine_;
};

std::unique_ptr<lmdrive::shim::ShimEngine> make_engine(const std::string& config_json) {
  return std::make_unique<TableEngine>(Engine::create(config_json.c_str()));
}

// With no engine, info describes the library: backend, version, caps.
void library_info(lmd_info& out) {
  copy_cstr(out.backend, sizeof out.backend, "ref-cpu");
  copy_cstr(out.version, sizeof out.version, "lmdrive-ref " LMDRIVE_REF_VERSION);
  out.caps = LMD_CAP_LOGPROBS | LMD_CAP_WATCH | LMD_CAP_SAMPLING;
}

}  // namespace
}  // namespace lmdref

extern "C" LMDREF_EXPORT const lmd_api* lmdrive_get_api(void) {
  return lmdrive::shim::api_table<&lmdref::make_engine, &lmdref::library_info>();
}
