// The random-weight spec. The expected values were computed independently
// (a Python transcription of the spec with explicit fp32 rounding); the Go
// side's `lmdrive model init` must produce the same bits.
#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"
#include "random_weights.h"
#include "weight_source.h"
#include "presets.h"

using namespace lmdref;

static uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

static void expect(const std::string& name, uint64_t seed, uint64_t in, const uint32_t (&want)[4]) {
  RandomRule r = random_rule(name, seed, in);
  for (int i = 0; i < 4; ++i) {
    const float v = random_element(r, uint64_t(i));
    if (bits(v) != want[i]) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s seed %llu element %d: %.9g (0x%08x), want 0x%08x",
                    name.c_str(), (unsigned long long)seed, i, v, bits(v), want[i]);
      check::fail(__FILE__, __LINE__, buf);
    }
  }
}

TEST_CASE(random_weight_spec) {
  CHECK(splitmix64(0) == 0xe220a8397b1dcdafULL);
  CHECK(splitmix64(1) == 0x910a2dec89025cc1ULL);
  CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(random_rule("model.embed_tokens.weight", 1, 64).key == 0x3985fa795cc48d97ULL);

  // -0.818236589, -0.533716321, -0.804259896, -0.56154561
  expect("model.embed_tokens.weight", 1, 64, {0xbf5177f4, 0xbf08a1a2, 0xbf4de3fa, 0xbf0fc174});
  // -0.933710694, -0.247448206, 0.420477748, 0.758395195
  expect("model.embed_tokens.weight", 0, 64, {0xbf6f07aa, 0xbe7d6310, 0x3ed748dc, 0x3f422630});
  // scale 1/sqrt(64): 0.030386582, 0.0149886161, 0.0352110416, -0.080556795
  expect("model.layers.0.self_attn.q_proj.weight", 1, 64,
         {0x3cf8ed48, 0x3c7592d0, 0x3d103974, 0xbda4faf6});
  // scale 0.1: -0.0352020264, 0.0396711491, 0.0390227214, 0.0925950631
  expect("model.layers.0.self_attn.q_proj.bias", 1, 64,
         {0xbd103000, 0x3d227e37, 0x3d1fd64a, 0x3dbda27b});
  // 1 + v: 0.934087753, 1.04652476, 0.98546201, 0.990078807
  expect("model.layers.0.input_layernorm.weight", 1, 64,
         {0x3f6f2060, 0x3f85f486, 0x3f7c473d, 0x3f7d75ce});
  // 0.942885399, 1.07971907, 0.903205335, 0.945937097
  expect("model.norm.weight", 1, 64, {0x3f7160f0, 0x3f8a343c, 0x3f673877, 0x3f7228ef});

  // Ranges: embeddings in [-1, 1), projections within 1/sqrt(in), norms in [0.9, 1.1).
  RandomRule down = random_rule("model.layers.3.mlp.down_proj.weight", 5, 176);
  RandomRule norm = random_rule("model.layers.3.post_attention_layernorm.weight", 5, 64);
  const float lim = float(1.0 / std::sqrt(176.0));
  for (uint64_t i = 0; i < 10000; ++i) {
    float d = random_element(down, i), n = random_element(norm, i);
    if (!(d >= -lim && d < lim) || !(n >= 0.9f && n <= 1.1f)) {
      check::fail(__FILE__, __LINE__, "value out of range at " + std::to_string(i));
      break;
    }
  }

  // The source serves any element range, consistently with the flat index.
  ModelConfig tiny = preset_model_config(*find_preset("tiny"));
  auto src = make_random_source(tiny, 1);
  std::vector<float> a(8), b(3);
  src->read("model.embed_tokens.weight", 0, 8, a.data());
  src->read("model.embed_tokens.weight", 5, 3, b.data());
  CHECK(bits(a[0]) == 0xbf5177f4 && std::memcmp(a.data() + 5, b.data(), 12) == 0);
  CHECK(!src->info("lm_head.weight").found);  // tiny is tied

  bool threw = false;
  try {
    random_rule("model.layers.0.self_attn.rotary.inv_freq", 0, 1);
  } catch (const std::exception&) {
    threw = true;
  }
  CHECK(threw);
}

TEST_MAIN("test_random_weights")
