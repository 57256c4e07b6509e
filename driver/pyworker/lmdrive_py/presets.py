"""Model shapes of random:<preset>, the same table as driver/checkpoint and
native/ref (a Go test compares them), and the Hugging Face config.json that
`lmdrive model init` writes for each."""
import json
import sys

# name, vocab, hidden, intermediate, layers, heads, kv_heads, tied, max_positions, rope_theta, rms_norm_eps
PRESETS = [
    ("tiny", 151936, 64, 176, 2, 4, 2, True, 32768, 1e6, 1e-6),
    ("tiny-untied", 151936, 96, 256, 3, 6, 2, False, 4096, 10000.0, 1e-5),
    ("qwen2.5-0.5b", 151936, 896, 4864, 24, 14, 2, True, 32768, 1e6, 1e-6),
    ("qwen2.5-1.5b", 151936, 1536, 8960, 28, 12, 2, True, 32768, 1e6, 1e-6),
    ("qwen2.5-3b", 151936, 2048, 11008, 36, 16, 2, True, 32768, 1e6, 1e-6),
    ("qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, False, 32768, 1e6, 1e-6),
    ("qwen2.5-14b", 152064, 5120, 13824, 48, 40, 8, False, 32768, 1e6, 1e-5),
    ("qwen2.5-32b", 152064, 5120, 27648, 64, 40, 8, False, 32768, 1e6, 1e-5),
    ("qwen2.5-72b", 152064, 8192, 29568, 80, 64, 8, False, 32768, 1e6, 1e-5),
]
FIELDS = ("name", "vocab", "hidden", "intermediate", "layers", "heads", "kv_heads", "tied",
          "max_positions", "rope_theta", "rms_norm_eps")

# Qwen2.5's <|im_end|> and <|endoftext|>: the EOS set of random presets.
EOS_IDS = [151645, 151643]
PAD_ID = 151643


def lookup(name):
    for p in PRESETS:
        if p[0] == name:
            return dict(zip(FIELDS, p))
    return None


def names():
    return [p[0] for p in PRESETS]


def hf_config(p):
    """config.json as driver/checkpoint writes it (transformers' Qwen2Config)."""
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": p["vocab"],
        "hidden_size": p["hidden"], "intermediate_size": p["intermediate"], "num_hidden_layers": p["layers"],
        "num_attention_heads": p["heads"], "num_key_value_heads": p["kv_heads"], "head_dim": p["hidden"] // p["heads"],
        "hidden_act": "silu", "max_position_embeddings": p["max_positions"], "rms_norm_eps": p["rms_norm_eps"],
        "rope_theta": p["rope_theta"], "rope_parameters": {"rope_type": "default", "rope_theta": p["rope_theta"]},
        "tie_word_embeddings": p["tied"], "attention_dropout": 0.0, "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": p["layers"], "bos_token_id": PAD_ID, "eos_token_id": EOS_IDS[0], "use_cache": True,
    }


if __name__ == "__main__":
    json.dump([dict(zip(FIELDS, p)) for p in PRESETS], sys.stdout)
