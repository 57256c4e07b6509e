#!/usr/bin/env python3
"""Golden-logit parity of the reference engine against Hugging Face transformers.

Needs torch, transformers, safetensors and numpy (make test runs it with its
Python test environment; ctest does not). For each case it writes a small
Qwen2 checkpoint, computes fp32 logits on the CPU with transformers, asks
liblmdrive_ref.so for the same logits through its lmdrive_ref_logits debug
symbol, and reports max|diff| / max|logit|. The
random:<preset> cases rebuild the preset's weights from the random-weight spec
with numpy, which also cross-checks the spec's implementation. The int8 cases
run the engine with "weights": "int8" (quantizing at load) against
transformers on the dequantized checkpoint (../quant_ref.py: int8 values ×
scales, fp32): the same fp32 tolerance.

usage: hf_parity.py path/to/liblmdrive_ref.so [report.json]
"""
import ctypes
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import quant_ref  # noqa: E402

TOLERANCE = 1e-4

# One line a case: transformers' loading and saving progress bars only add noise.
transformers.utils.logging.disable_progress_bar()


class LmdError(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("code", ctypes.c_int32),
                ("message", ctypes.c_char * 1016)]


def ref_logits(lib, config, tokens, last_k, vocab):
    toks = (ctypes.c_int32 * len(tokens))(*tokens)
    out = np.zeros((last_k, vocab), dtype=np.float32)
    err = LmdError(struct_size=ctypes.sizeof(LmdError))
    rc = lib.lmdrive_ref_logits(json.dumps(config).encode(), toks, len(tokens), last_k,
                                out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                ctypes.byref(err))
    if rc != 0:
        raise RuntimeError(f"lmdrive_ref_logits: {rc}: {err.message.decode()}")
    return out


def hf_logits(model_dir, tokens, last_k, attn):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=attn)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([tokens])).logits[0, -last_k:].float().numpy()
    return out


def qwen2_config(vocab, hidden, inter, layers, heads, kv, tied, theta, eps, max_pos=32768,
                 head_dim=None):
    kw = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter,
              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
              tie_word_embeddings=tied, rope_theta=theta, rms_norm_eps=eps,
              max_position_embeddings=max_pos, eos_token_id=151643, initializer_range=0.05,
              use_sliding_window=False)
    if head_dim:
        kw["head_dim"] = head_dim
    return transformers.Qwen2Config(**kw)


def write_hf_random(cfg, directory, dtype, seed):
    """A transformers-initialised model with non-trivial biases and norms."""
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
            elif "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model.to(dtype).save_pretrained(directory, safe_serialization=True)


# The random-weight spec, vectorised (uint64 arithmetic wraps in numpy).
def splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def spec_tensor(name, shape, seed):
    key = np.uint64(fnv1a64(name)) ^ splitmix64(np.uint64(seed))
    n = int(np.prod(shape))
    h = splitmix64(key + np.arange(n, dtype=np.uint64))
    u = (h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    if name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
        scale, plus = np.float32(1.0), False
    elif name.endswith("_proj.weight"):
        scale, plus = np.float32(1.0 / math.sqrt(shape[-1])), False
    elif name.endswith("_proj.bias"):
        scale, plus = np.float32(0.1), False
    else:
        scale, plus = np.float32(0.1), True
    v = (u * np.float32(2.0) - np.float32(1.0)) * scale
    if plus:
        v = np.float32(1.0) + v
    return v.astype(np.float32).reshape(shape)


def write_spec_checkpoint(cfg, directory, seed):
    h, q = cfg.hidden_size, cfg.num_attention_heads * (cfg.hidden_size // cfg.num_attention_heads)
    kv = cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    shapes = {"model.embed_tokens.weight": (cfg.vocab_size, h), "model.norm.weight": (h,)}
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, h)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h), p + "self_attn.q_proj.bias": (q,),
            p + "self_attn.k_proj.weight": (kv, h), p + "self_attn.k_proj.bias": (kv,),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.v_proj.bias": (kv,),
            p + "self_attn.o_proj.weight": (h, q),
            p + "mlp.gate_proj.weight": (cfg.intermediate_size, h),
            p + "mlp.up_proj.weight": (cfg.intermediate_size, h),
            p + "mlp.down_proj.weight": (h, cfg.intermediate_size)})
    os.makedirs(directory, exist_ok=True)
    with np.errstate(over="ignore"):  # uint64 products wrap, as the spec wants
        tensors = {n: spec_tensor(n, s, seed) for n, s in shapes.items()}
    save_file(tensors,
              os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(directory)


def tokens_for(n, vocab, seed):
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(0, vocab, size=n)]


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.lmdrive_ref_logits.restype = ctypes.c_int32
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = []

    def compare(name, model_dir, ref_config, vocab, n, last_k, attn="sdpa"):
        toks = tokens_for(n, vocab, n)
        want = hf_logits(model_dir, toks, last_k, attn)
        got = ref_logits(lib, ref_config, toks, last_k, vocab)
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        same_argmax = bool((got.argmax(-1) == want.argmax(-1)).all())
        ok = rel < TOLERANCE and same_argmax
        results.append({"case": name, "tokens": n, "last_k": last_k, "attn": attn,
                        "max_abs_logit": float(np.abs(want).max()), "rel_err": rel,
                        "same_argmax": same_argmax, "ok": ok})
        print(f"{'ok  ' if ok else 'FAIL'} {name:34s} n={n:5d} attn={attn:5s} "
              f"rel_err={rel:.2e} max|logit|={np.abs(want).max():.3g}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # Checkpoints initialised by transformers itself.
        cases = [
            ("tied gqa2 theta1e6", qwen2_config(2048, 128, 352, 3, 4, 2, True, 1e6, 1e-6),
             torch.float32, [1, 17, 300, 2000]),
            ("untied gqa7 theta1e4", qwen2_config(1000, 112, 256, 2, 7, 1, False, 1e4, 1e-5),
             torch.float32, [64, 1500]),
            ("head_dim override", qwen2_config(1000, 128, 256, 2, 8, 2, False, 1e6, 1e-6,
                                               head_dim=32), torch.float32, [100]),
            ("bf16 checkpoint", qwen2_config(1000, 128, 256, 2, 4, 2, False, 1e6, 1e-6),
             torch.bfloat16, [100]),
            ("f16 checkpoint", qwen2_config(1000, 128, 256, 2, 4, 2, True, 1e6, 1e-6),
             torch.float16, [100]),
        ]
        for i, (name, cfg, dtype, lengths) in enumerate(cases):
            d = f"{tmp}/case{i}"
            write_hf_random(cfg, d, dtype, seed=i)
            for n in lengths:
                compare(name, d, {"model": d}, cfg.vocab_size, n, min(n, 4))
            compare(name, d, {"model": d}, cfg.vocab_size, lengths[-1], 1, attn="eager")
            # Int8 weights (and an int8 lm_head): the dequantized model.
            if i in (0, 1, 3):
                for head in ([False, True] if i in (0, 1) else [False]):
                    dq = f"{tmp}/case{i}-int8{'-head' if head else ''}"
                    quant_ref.write_dequantized(d, dq, "int8", lm_head=head, dtype=np.float32)
                    compare(f"int8{'+lm_head' if head else ''} {name}", dq,
                            {"model": d, "weights": "int8", "quantize_lm_head": head},
                            cfg.vocab_size, lengths[-1], min(lengths[-1], 4))

        # The presets' own random weights, rebuilt from the spec.
        for preset, cfg in [("tiny", qwen2_config(151936, 64, 176, 2, 4, 2, True, 1e6, 1e-6)),
                            ("tiny-untied", qwen2_config(151936, 96, 256, 3, 6, 2, False, 1e4,
                                                         1e-5, max_pos=4096))]:
            d = f"{tmp}/{preset}"
            write_spec_checkpoint(cfg, d, seed=1)
            for n in [7, 1000]:
                compare(f"random:{preset} seed=1 (spec)", d,
                        {"model": f"random:{preset}", "seed": 1}, cfg.vocab_size, n, 2)
            dq = f"{tmp}/{preset}-int8"
            quant_ref.write_dequantized(d, dq, "int8", dtype=np.float32)
            compare(f"int8 random:{preset} seed=1 (spec)", dq,
                    {"model": f"random:{preset}", "seed": 1, "weights": "int8"}, cfg.vocab_size,
                    300, 2)

    report = {"transformers": transformers.__version__, "torch": torch.__version__,
              "tolerance": TOLERANCE, "results": results}
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            json.dump(report, f, indent=1)
    bad = [r for r in results if not r["ok"]]
    print(f"{len(results) - len(bad)}/{len(results)} cases within {TOLERANCE:g}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
