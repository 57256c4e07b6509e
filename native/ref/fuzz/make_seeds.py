#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (corpus/<target>/): valid
inputs and the bad inputs the C++ tests check, one file each. Run from any
folder; the files are committed, so rerun only to change them."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(header, data=b"", length=None):
    h = json.dumps(header).encode() if not isinstance(header, bytes) else header
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def write(target, name, content):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)


ok = {"__metadata__": {"format": "pt"},
      "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "BF16", "shape": [1, 3], "data_offsets": [8, 14]},
      "empty": {"dtype": "F16", "shape": [0], "data_offsets": [14, 14]}}
st = {
    "valid": safetensors(ok, bytes(range(14))),
    "empty-file": b"",
    "too-short": b"\x01\x02\x03",
    "absurd-header-length": safetensors(ok, b"", length=1 << 40),
    "header-past-end": safetensors(ok, b"", length=4096),
    "header-not-object": safetensors([1, 2, 3]),
    "header-not-json": safetensors(b"{\"a\": "),
    "unknown-dtype": safetensors({"a": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0"),
    "shape-overflow": safetensors({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}}, b"\0" * 4),
    "offsets-reversed": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 8),
    "offsets-past-data": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b""),
    "offsets-wrong-size": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8),
    "offsets-not-pair": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\0" * 4),
    "negative-shape": safetensors({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "overlap": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
    "unknown-field": safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4),
    "metadata-not-object": safetensors({"__metadata__": 3}),
}
for name, content in st.items():
    write("safetensors", name, content)

shape = {"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 128, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
         "tie_word_embeddings": True, "eos_token_id": [1, 2]}
cfg = {
    "valid": shape,
    "not-divisible": dict(shape, hidden_size=100, num_attention_heads=3),
    "kv-heads": dict(shape, num_key_value_heads=3),
    "odd-head-dim": dict(shape, head_dim=15),
    "zero-heads": dict(shape, num_attention_heads=0),
    "llama": dict(shape, model_type="llama"),
    "rope-scaling": dict(shape, rope_scaling={"type": "yarn", "factor": 4}),
    "sliding-window": dict(shape, use_sliding_window=True),
    "eos-string": dict(shape, eos_token_id="x"),
    "negative-vocab": dict(shape, vocab_size=-5),
    "huge-vocab": dict(shape, vocab_size=1 << 40),
    "missing-hidden": {k: v for k, v in shape.items() if k != "hidden_size"},
}
for name, content in cfg.items():
    write("model_config", name, json.dumps(content))
for name, content in {"empty": "", "not-object": "[1, 2]", "truncated": '{"vocab_size": 6', "null": "null"}.items():
    write("model_config", name, content)
for src in ["qwen2.5-instruct", "trtllm-engine"]:
    with open(os.path.join(HERE, "..", "..", "..", "testdata", "eos", src, "config.json"), "rb") as f:
        write("model_config", "testdata-" + src, f.read())
