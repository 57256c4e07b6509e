"""On a GPU: the worker's random weights generated on the GPU equal the
CPU's bit for bit (int64 wrap-around and float32 rounding the same on both),
for slices of every kind of random:qwen2.5-14b tensor, far indices included,
and in fp16 and bf16. Prints one line per check; exits 1 on a difference."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lmdrive_py import random_weights  # noqa: E402

CASES = [("model.embed_tokens.weight", [152064, 5120]), ("lm_head.weight", [152064, 5120]),
         ("model.layers.47.self_attn.q_proj.weight", [5120, 5120]), ("model.layers.3.self_attn.k_proj.bias", [1024]),
         ("model.layers.20.mlp.down_proj.weight", [5120, 13824]), ("model.norm.weight", [5120])]


def main():
    if not torch.cuda.is_available():
        print("no GPU")
        return 1
    bad = 0
    for name, shape in CASES:
        n = 1
        for d in shape:
            n *= d
        for start in sorted({0, max(0, n // 2 - 4096), max(0, n - (1 << 20))}):
            count = min(1 << 20, n - start)
            cpu = random_weights.values(torch, name, shape, 1, start, count, "cpu")
            gpu = random_weights.values(torch, name, shape, 1, start, count, "cuda").cpu()
            for dt in (torch.float32, torch.float16, torch.bfloat16):
                a, b = cpu.to(dt), gpu.to(dt)
                same = torch.equal(a.view(torch.int32) if dt == torch.float32 else a.view(torch.int16),
                                   b.view(torch.int32) if dt == torch.float32 else b.view(torch.int16))
                bad += not same
            print("%s %s [%d, %d)" % ("ok  " if not bad else "DIFF", name, start, start + count))
    print("random weights: GPU %s CPU" % ("==" if not bad else "!="))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
