"""Checks the worker's random weights against a checkpoint written by
`lmdrive model init` (driver/checkpoint): every tensor, bit for bit.

usage: compare_random.py CHECKPOINT_DIR PRESET SEED DTYPE [CHECKPOINT_DIR PRESET SEED DTYPE ...]
(dtype fp32|fp16|bf16). Prints "identical: N tensors, M values" per
checkpoint, or the first differing tensor and exits 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from lmdrive_py import random_weights  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main():
    args = sys.argv[1:]
    for i in range(0, len(args), 4):
        if check(args[i], args[i + 1], int(args[i + 2]), args[i + 3]):
            return 1
    return 0


def check(folder, preset, seed, dtype_name):
    dtype = DTYPES[dtype_name]
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    values = 0
    for name, want in sorted(tensors.items()):
        got = random_weights.tensor(torch, name, list(want.shape), seed, dtype, "cpu")
        if got.dtype != want.dtype or not torch.equal(got.view(torch.int16 if dtype != torch.float32 else torch.int32),
                                                      want.view(torch.int16 if dtype != torch.float32 else torch.int32)):
            bad = (got.float() != want.float()).nonzero()[:3].tolist()
            print("differs: %s (%s vs %s) at %s" % (name, got.dtype, want.dtype, bad))
            return 1
        values += want.numel()
    print("identical: %d tensors, %d values (preset %s, seed %d, %s)" % (len(tensors), values, preset, seed, dtype_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
