"""The reference engine's random weights (docs/ref-engine.md, "Random
weights: the spec"), computed with torch on any device, so `hf` with
random:<preset> holds exactly the ref engine's weights, bit for bit, at any
size.

Each value is a pure function of (seed, tensor name, flat index). uint64
arithmetic is done on int64 tensors: additions and products wrap the same
way, and logical right shifts are arithmetic shifts with the sign bits
masked off. Float steps are separate float32 tensor operations, each
rounded, as the spec wants (no fused multiply-add)."""
import math
import struct

MASK64 = (1 << 64) - 1


def _signed(x):
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


GOLDEN = _signed(0x9E3779B97F4A7C15)
MIX1 = _signed(0xBF58476D1CE4E5B9)
MIX2 = _signed(0x94D049BB133111EB)


def splitmix64(x):
    """One splitmix64 step on a Python integer (uint64)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & MASK64
    return h


def float32(x):
    """x rounded to float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


def rule(name, in_features):
    """(scale, plus_one) of a tensor, by its Hugging Face name."""
    if name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
        return 1.0, False
    if name.endswith("_proj.weight"):
        return float32(1.0 / math.sqrt(float(in_features))), False
    if name.endswith("_proj.bias"):
        return float32(0.1), False
    if name.endswith("norm.weight"):
        return float32(0.1), True
    raise ValueError('no random-weight rule for tensor "%s"' % name)


def _lsr(torch, z, k):
    """Logical right shift of int64 values seen as uint64."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _splitmix64_t(torch, x):
    """splitmix64 of each element (int64 tensors, wrapping like uint64)."""
    x = x + GOLDEN
    z = (x ^ _lsr(torch, x, 30)) * MIX1
    z = (z ^ _lsr(torch, z, 27)) * MIX2
    return z ^ _lsr(torch, z, 31)


def _mix_(torch, z, tmp, k):
    """z ^= z >>> k, in place (tmp: scratch of z's size)."""
    torch.bitwise_right_shift(z, k, out=tmp)
    tmp.bitwise_and_((1 << (64 - k)) - 1)
    z.bitwise_xor_(tmp)


def values(torch, name, shape, seed, start, count, device):
    """Elements [start, start+count) of the flattened tensor, float32."""
    out = torch.empty(count, dtype=torch.float32, device=device)
    _values_into(torch, out, name, shape, seed, start)
    return out


def _values_into(torch, out, name, shape, seed, start):
    # In-place integer steps on two scratch tensors: the same operations as
    # _splitmix64_t, without a new tensor per step.
    scale, plus_one = rule(name, shape[-1])
    key = _signed(fnv1a64(name) ^ splitmix64(seed))
    count = out.numel()
    z = torch.arange(start, start + count, dtype=torch.int64, device=out.device)
    tmp = torch.empty_like(z)
    z.add_(_signed(key + GOLDEN))
    _mix_(torch, z, tmp, 30)
    z.mul_(MIX1)
    _mix_(torch, z, tmp, 27)
    z.mul_(MIX2)
    _mix_(torch, z, tmp, 31)
    torch.bitwise_right_shift(z, 40, out=tmp)
    tmp.bitwise_and_((1 << 24) - 1)
    out.copy_(tmp)                        # exact: 24-bit integers
    out.mul_(float32(1.0 / 16777216.0))   # u
    out.mul_(2.0).sub_(1.0).mul_(scale)   # (u * 2 - 1) * scale, each step rounded
    if plus_one:
        out.add_(1.0)


def fill_(torch, tensor, name, seed, chunk=1 << 20):
    """Writes the spec's values into tensor (any dtype, any device), chunk by
    chunk; float16 and bfloat16 round to nearest even, as the ref engine and
    `lmdrive model init` do."""
    flat = tensor.view(-1)
    n = flat.numel()
    shape = list(tensor.shape)
    if tensor.device.type == "cuda":
        chunk = max(chunk, 1 << 26)  # GPUs want big launches
    buf = torch.empty(min(chunk, n), dtype=torch.float32, device=tensor.device)
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        part = buf[:count]
        _values_into(torch, part, name, shape, seed, start)
        flat[start:start + count].copy_(part)
    return tensor


def tensor(torch, name, shape, seed, dtype, device):
    t = torch.empty(shape, dtype=dtype, device=device)
    return fill_(torch, t, name, seed)
