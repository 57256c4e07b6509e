// Deterministic random weights: a pure function of (seed, tensor name,
// element index), shared bit for bit with `lmdrive model init` on the Go side.
//
//   splitmix64(x): x += 0x9E3779B97F4A7C15; z = x;
//                  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//                  z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31)
//   fnv1a64(name): h = 0xcbf29ce484222325; per byte: h ^= b; h *= 0x100000001b3
//   key          = fnv1a64(name) ^ splitmix64(seed)
//   element i    : h = splitmix64(key + i); u = float(h >> 40) / 2^24;
//                  v = (u * 2 - 1) * scale          (float32, no fused multiply-add)
//   scale        : embed_tokens, lm_head 1.0; *_proj.weight float(1/sqrt(double(in)));
//                  *_proj.bias 0.1; norm weights are 1 + v with scale 0.1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lmdref {

uint64_t splitmix64(uint64_t x);
uint64_t fnv1a64(const std::string& bytes);

// How a tensor's elements are drawn.
struct RandomRule {
  uint64_t key = 0;
  float scale = 1.0f;
  bool plus_one = false;  // norm weights: 1 + v
};

// in_features is the tensor's last dimension (used by *_proj.weight only).
// Throws Error(LMD_ERR_INVALID) for a name outside the Qwen2 naming scheme.
RandomRule random_rule(const std::string& name, uint64_t seed, uint64_t in_features);

float random_element(const RandomRule& rule, uint64_t index);

// Elements [first, first + count) of the tensor, row-major.
void fill_random(const RandomRule& rule, uint64_t first, size_t count, float* out);

}  // namespace lmdref
