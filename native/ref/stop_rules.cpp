#include "stop_rules.h"

#include <algorithm>

#include "lmdrive.h"

namespace lmdref {

StopRules::StopRules(std::vector<int32_t> eos_ids, bool ignore_eos, uint32_t min_new,
                     std::vector<std::vector<int32_t>> stop_sequences, uint32_t max_requested,
                     uint32_t max_effective)
    : eos_(std::move(eos_ids)),
      ignore_eos_(ignore_eos),
      min_new_(min_new),
      stops_(std::move(stop_sequences)),
      max_requested_(max_requested),
      max_effective_(max_effective) {}

StopDecision StopRules::check(const std::vector<int32_t>& generated, bool cancelled) const {
  StopDecision d;
  if (cancelled) {
    d.finish = LMD_FINISH_CANCELLED;
    return d;
  }
  const uint32_t count = static_cast<uint32_t>(generated.size());
  if (count == 0) return d;
  const int32_t last = generated.back();
  if (count >= min_new_) {
    if (!ignore_eos_ && std::find(eos_.begin(), eos_.end(), last) != eos_.end()) {
      d.finish = LMD_FINISH_EOS;
      d.stop_token = last;
      return d;
    }
    for (size_t s = 0; s < stops_.size(); ++s) {
      const auto& seq = stops_[s];
      if (seq.empty() || seq.size() > generated.size()) continue;
      if (std::equal(seq.begin(), seq.end(), generated.end() - seq.size())) {
        d.finish = LMD_FINISH_STOP;
        d.stop_token = last;
        d.stop_sequence = static_cast<int32_t>(s);
        return d;
      }
    }
  }
  if (count >= max_requested_) {
    d.finish = LMD_FINISH_LENGTH;
  } else if (count >= max_effective_) {
    d.finish = LMD_FINISH_LIMIT;
  }
  return d;
}

std::vector<int32_t> StopRules::single_stop_ids() const {
  std::vector<int32_t> ids;
  auto add = [&](int32_t id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (!ignore_eos_)
    for (int32_t id : eos_) add(id);
  for (const auto& seq : stops_)
    if (seq.size() == 1) add(seq[0]);
  return ids;
}

}  // namespace lmdref
