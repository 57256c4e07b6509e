"""Model shapes of random:<preset> (presets_table.py, generated from
driver/checkpoint's table, the one source), and the Hugging Face config.json
that `lmdrive model init` writes for each."""
from .presets_table import EOS_IDS, PRESETS  # noqa: F401 - EOS_IDS is part of this module's API

FIELDS = ("name", "vocab", "hidden", "intermediate", "layers", "heads", "kv_heads", "tied",
          "max_positions", "rope_theta", "rms_norm_eps")
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

