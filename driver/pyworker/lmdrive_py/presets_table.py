# Code generated from driver/checkpoint/preset.go by
#   go test ./driver/checkpoint -run TestPythonPresetTable -update
# DO NOT EDIT: the Go table is the one source of the model presets, and that
# test fails while this file differs from it.

# name, vocab, hidden, intermediate, layers, heads, kv_heads, tied, max_positions, rope_theta, rms_norm_eps
PRESETS = [
    ("tiny", 151936, 64, 176, 2, 4, 2, True, 32768, 1e+06, 1e-06),
    ("tiny-untied", 151936, 96, 256, 3, 6, 2, False, 4096, 10000.0, 1e-05),
    ("qwen2.5-0.5b", 151936, 896, 4864, 24, 14, 2, True, 32768, 1e+06, 1e-06),
    ("qwen2.5-1.5b", 151936, 1536, 8960, 28, 12, 2, True, 32768, 1e+06, 1e-06),
    ("qwen2.5-3b", 151936, 2048, 11008, 36, 16, 2, True, 32768, 1e+06, 1e-06),
    ("qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, False, 32768, 1e+06, 1e-06),
    ("qwen2.5-14b", 152064, 5120, 13824, 48, 40, 8, False, 32768, 1e+06, 1e-05),
    ("qwen2.5-32b", 152064, 5120, 27648, 64, 40, 8, False, 32768, 1e+06, 1e-05),
    ("qwen2.5-72b", 152064, 8192, 29568, 80, 64, 8, False, 32768, 1e+06, 1e-05),
]

# The EOS set of random presets (Qwen2.5's <|im_end|> and <|endoftext|>), as generation_config.json lists it.
EOS_IDS = [151645, 151643]
