// Test fixtures: temporary directories, safetensors files and small
// Hugging Face style checkpoints written from a WeightSource.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model_config.h"
#include "weight_source.h"

namespace fixtures {

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);

// 8-byte little-endian length + header + data.
std::string safetensors_bytes(const std::string& header, const std::string& data);

struct CheckpointOptions {
  std::string dtype = "F32";             // F32, F16 or BF16
  int shards = 1;                        // >1: model.safetensors.index.json + shards
  std::string omit;                      // leave this tensor out
  std::string reshape;                   // write this tensor with shape {1, 1}
  std::string as_i32;                    // label this F32 tensor's dtype I32
  std::string eos_json = "151643";       // config.json eos_token_id
};

// config.json for a Qwen2 model of this shape.
std::string qwen2_config_json(const lmdref::ModelConfig& m, const std::string& eos_json);

// Writes config.json and the weights of `src` into dir.
void write_checkpoint(const std::string& dir, const lmdref::ModelConfig& m,
                      const lmdref::WeightSource& src, const CheckpointOptions& opt);

// The weights of `inner` with every Linear weight (and lm_head when asked)
// replaced by its int8 quantization times its scale (quantize.h), in fp32:
// the model an int8 engine must compute. With a quantized lm_head on a tied
// model it shows an lm_head.weight of its own (the quantized embedding), as
// the embedding itself stays unquantized. The inner source must outlive it.
class DequantizedSource : public lmdref::WeightSource {
 public:
  DequantizedSource(const lmdref::WeightSource& inner, bool lm_head)
      : inner_(inner), lm_head_(lm_head) {}
  lmdref::TensorInfo info(const std::string& name) const override;
  void read(const std::string& name, uint64_t first, uint64_t count, float* out) const override;

 private:
  const lmdref::WeightSource& inner_;
  bool lm_head_;
};

// Rounds to the nearest bf16 / f16 bit pattern.
uint16_t to_bf16(float f);
uint16_t to_f16(float f);

}  // namespace fixtures
