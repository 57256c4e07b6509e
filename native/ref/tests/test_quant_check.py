#!/usr/bin/env python3
"""The checks of native/ref/cuda/quant_check.py without a GPU: a numpy
stand-in for the plugin's probe (FakeProbe, computing as a correct GPU would,
in fp32 with another summation order) must pass every check, and each
planted fault must be reported where it is: a flipped byte, the prefill
scratch of q|k|v overwritten by gate|up (the first version's layout fault),
a dropped 16-byte column chunk in the decode product, and swapped RoPE halves.
Needs numpy only (exit 77: skipped without it)."""
import os
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: quant_check test skipped")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cuda"))
import quant_check as qc  # noqa: E402

F32 = np.float32
SHAPE = ("test-256", 256, 768, 1, 4, 2, 100)


class FakeProbe:
    """What a correct probe returns, from numpy; `fault` plants one error."""

    def __init__(self, tensors, fmt, dt, tp, rank, fault=None):
        self.t, self.shape = tensors, SHAPE
        self.fmt, self.dt, self.tp, self.rank, self.fault = fmt, dt, tp, rank, fault

    def want(self, layer, which):
        return qc.expected(self.t, self.shape, self.fmt, layer, which, self.tp, self.rank)

    def shape_of(self, which):
        return self.want(0, which)[0].shape

    def matrix(self, layer, which, half):
        q, s, v = self.want(layer, which)
        q = q.copy()
        if self.fault == "byte" and which == qc.DOWN:
            q[2, 33] ^= 1
        deq = None
        if half >= 0:
            src = which
            if self.fault == "scratch" and which == qc.QKV:
                src = qc.GATE_UP  # gate|up written over q|k|v
            _, s2, v2 = self.want(layer, src)
            rows, cols = q.shape
            deq = qc.round_t(v2[:rows, :cols] * s2[:rows, None], self.dt)
        return q, s.copy(), deq

    def gemv(self, layer, which, form, x, norm=None, residual=None, pos=0):
        _, s, v = self.want(layer, which)
        dt = self.dt
        if norm is not None:
            r = F32(1) / np.sqrt(F32(np.sum(x * x, dtype=F32) / F32(x.size)) + F32(qc.EPS))
            x = qc.round_t(norm * qc.round_t(x * r, dt), dt)
        v = v.copy()
        if self.fault == "tail" and which == qc.DOWN:
            v[:, -16:] = 0
        y = (s * (v @ x.astype(F32))).astype(F32)
        if form == qc.Y:
            return y
        if form == qc.RESIDUAL:
            return qc.round_t(residual + qc.round_t(y, dt), dt)
        if form == qc.GATE_UP_ACT:
            n = y.size // 2
            g, u = qc.round_t(y[:n], dt), qc.round_t(y[n:], dt)
            out = np.zeros(y.size, F32)
            with np.errstate(over="ignore"):
                out[:n] = qc.round_t(qc.round_t(g / (1 + np.exp(-g)), dt) * u, dt)
            return out
        _, h, _, _, heads, kv, _ = self.shape
        hd, qh, kvh = h // heads, heads // self.tp, kv // self.tp
        half, r = hd // 2, self.rank
        pre = f"model.layers.{layer}.self_attn."
        bias = np.concatenate([self.t[pre + "q_proj.bias"][r * qh * hd:(r + 1) * qh * hd],
                               self.t[pre + "k_proj.bias"][r * kvh * hd:(r + 1) * kvh * hd],
                               self.t[pre + "v_proj.bias"][r * kvh * hd:(r + 1) * kvh * hd]])
        yb = (y + qc.round_t(bias, dt)).reshape(-1, hd)
        a, b = qc.round_t(yb[:, :half], dt), qc.round_t(yb[:, half:], dt)
        if self.fault == "rope":
            a, b = b, a
        inv = (F32(1) / np.power(np.float64(F32(qc.THETA)),
                                 ((2 * np.arange(half)).astype(F32) / F32(hd)).astype(np.float64))
               .astype(F32))
        ang = (F32(pos) * inv).astype(F32)
        cs, sn = qc.round_t(np.cos(ang), dt), qc.round_t(np.sin(ang), dt)
        lo = qc.round_t(qc.round_t(a * cs, dt) + qc.round_t(-b * sn, dt), dt)
        hi = qc.round_t(qc.round_t(b * cs, dt) + qc.round_t(a * sn, dt), dt)
        rot = np.concatenate([lo, hi], axis=1)
        return np.where(np.arange(qh + 2 * kvh)[:, None] < qh + kvh, rot,
                        np.concatenate([a, b], axis=1)).ravel()


def problems_of(tensors, fmt, dt, tp, rank, fault):
    p = FakeProbe(tensors, fmt, dt, tp, rank, fault)
    out = []
    for which in (qc.QKV, qc.O, qc.GATE_UP, qc.DOWN, qc.LM_HEAD):
        want = p.want(0, which)
        out += qc.check_matrix(p, want, fmt, dt, 0, which, tp, rank, np.random.default_rng(3))
    return out


def main():
    tensors = qc.synth_weights(SHAPE, seed=1)
    failed = 0

    def expect(cond, what):
        nonlocal failed
        print(f"{'ok  ' if cond else 'FAIL'} {what}", flush=True)
        failed += 0 if cond else 1

    for fmt, dt, tp, rank in [("int8", "fp16", 1, 0), ("int8", "bf16", 2, 1), ("fp8", "fp16", 1, 0)]:
        probs = problems_of(tensors, fmt, dt, tp, rank, None)
        expect(not probs, f"a correct probe passes: {fmt} {dt} tp={tp} rank={rank} {probs[:2]}")
    for fault, text in [("byte", "layer 0 down bytes: 1 of"),
                        ("scratch", "layer 0 qkv prefill scratch half 0"),
                        ("tail", "layer 0 down decode y"),
                        ("rope", "layer 0 qkv decode bias+RoPE")]:
        probs = problems_of(tensors, "int8", "fp16", 1, 0, fault)
        expect(any(text in p for p in probs), f"fault {fault!r} reported as {text!r}: {probs[:2]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
