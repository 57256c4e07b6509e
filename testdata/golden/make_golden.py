#!/usr/bin/env python3
"""Writes golden outputs of Hugging Face transformers for random checkpoints
made by `lmdrive model init`, for the ref engine's parity test.

For each checkpoint: a 64-token prompt (deterministic, below Qwen's special
IDs), the fp32 logits at its last 3 positions, and 32 greedy tokens computed
by re-running the full sequence each step (no EOS stop, no generation config).
TF32 is switched off so fp32 matmuls are true fp32.

usage: make_golden.py OUT_DIR NAME=SEED:CHECKPOINT_DIR [...]   (SEED: the model init seed)
"""
import json
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

PROMPT_LEN, LAST_K, GREEDY_STEPS = 64, 3, 32


def prompt_ids(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 151643, size=PROMPT_LEN, dtype=np.int64).tolist()


def main():
    out_dir, pairs = sys.argv[1], sys.argv[2:]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for pair in pairs:
        name, rest = pair.split("=", 1)
        seed, ckpt = rest.split(":", 1)
        model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager").to(device).eval()
        assert type(model).__name__ == "Qwen2ForCausalLM", type(model).__name__
        cfg = json.load(open(f"{ckpt}/config.json"))
        ids = prompt_ids(1234)
        with torch.no_grad():
            x = torch.tensor([ids], device=device)
            logits = model(x).logits[0, -LAST_K:].float().cpu().numpy()
            # The same positions in float64, to show how far fp32 itself is from exact.
            m64 = model.to(torch.float64)
            logits64 = m64(x).logits[0, -LAST_K:].cpu().numpy()
            model = m64.to(torch.float32)
            seq = list(ids)
            for _ in range(GREEDY_STEPS):
                nxt = int(model(torch.tensor([seq], device=device)).logits[0, -1].argmax())
                seq.append(nxt)
        greedy = seq[PROMPT_LEN:]
        logits.astype("<f4").tofile(f"{out_dir}/{name}.logits.f32")
        rel64 = float(np.abs(logits.astype(np.float64) - logits64).max() / np.abs(logits64).max())
        meta = {
            "name": name,
            "preset": cfg["lmdrive_preset"],
            "seed": int(seed),
            "vocab_size": cfg["vocab_size"],
            "prompt": ids,
            "last_k": LAST_K,
            "logits_file": f"{name}.logits.f32",
            "greedy": greedy,
            "fp32_vs_fp64_max_rel": rel64,
            "made_with": {"transformers": transformers.__version__, "torch": torch.__version__, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"},
        }
        json.dump(meta, open(f"{out_dir}/{name}.json", "w"), indent=1)
        print(f"{name}: greedy {greedy[:8]}..., fp32 vs fp64 max rel {rel64:.2e}")


if __name__ == "__main__":
    main()
