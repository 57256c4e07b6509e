// Built with -ffp-contract=off: the spec rounds after every float operation.
#include "random_weights.h"

#include <cmath>

#include "kit.h"

namespace lmdref {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

}  // namespace

RandomRule random_rule(const std::string& name, uint64_t seed, uint64_t in_features) {
  RandomRule r;
  r.key = fnv1a64(name) ^ splitmix64(seed);
  if (ends_with(name, "embed_tokens.weight") || ends_with(name, "lm_head.weight")) {
    r.scale = 1.0f;
  } else if (ends_with(name, "_proj.weight")) {
    r.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in_features)));
  } else if (ends_with(name, "_proj.bias")) {
    r.scale = 0.1f;
  } else if (ends_with(name, "norm.weight")) {
    r.scale = 0.1f;
    r.plus_one = true;
  } else {
    invalid("no random-weight rule for tensor \"" + name + "\"");
  }
  return r;
}

float random_element(const RandomRule& rule, uint64_t index) {
  const uint64_t h = splitmix64(rule.key + index);
  const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
  const float v = (u * 2.0f - 1.0f) * rule.scale;
  return rule.plus_one ? 1.0f + v : v;
}

void fill_random(const RandomRule& rule, uint64_t first, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = random_element(rule, first + i);
}

}  // namespace lmdref
