#!/usr/bin/env python3
"""The CUDA backend's quantized weights matrix by matrix, against the numpy
quantizer (native/ref/quant_ref.py), through the plugin's probe entry points
(quant_probe.h). Runs on a GPU machine; parity.py calls run() before its
model-level checks, so that a difference is located before it is seen in
the logits.

For synthetic models (random weights made here, served to the engine's own
loader through the weight callback; shapes with several column steps per warp,
a partial last step, row counts that are not a multiple of a tile, an
all-zero row and an outlier row), at tp=1 and as rank 1 of tp=2 (the column
split of o and down), each format and dtype, every quantized matrix of the
first and last layer (and the lm_head):
  bytes    the GPU's int8/E4M3 bytes = numpy's, bit for bit
  scales   the per-row fp32 scales = numpy's, bit for bit
  scratch  the prefill's dequantized matrix, read after the whole layer was
           dequantized into scratch half 0 and half 1 as the prefill does it
           = T(q × scale) of numpy, bit for bit
  y, y+norm, residual, swiglu, rope
           each decode kernel form against a float64 product of numpy's
           bytes and scales: |error| within fp32 summation error (plus a few
           16-bit rounding steps where the kernel rounds to T)
The first mismatch of each is printed with its row and column.

usage: quant_check.py LIBDIR [FORMAT ...]    (FORMAT: int8, fp8; default int8)
       quant_check.py LIBDIR --speed OUT.jsonl COPYBW.jsonl [FORMAT ...]
The second form times each decode kernel of the 14B and 32B models alone (the
weights cycled through more memory than L2 holds) and prints its weight
bandwidth as a share of the copy bandwidth that bench_torch.py copybw wrote to
COPYBW.jsonl (gpu_check.sh step `quant`).
"""
import ctypes
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import quant_ref  # noqa: E402

F32 = np.float32
c_i32, c_u32, c_u64, c_f32, c_p = (ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64,
                                   ctypes.c_float, ctypes.c_void_p)


class Model(ctypes.Structure):  # lmdref_cuda_model (plugin_abi.h)
    _fields_ = [("vocab", c_u32), ("hidden", c_u32), ("intermediate", c_u32), ("layers", c_u32),
                ("heads", c_u32), ("kv_heads", c_u32), ("head_dim", c_u32), ("tied", c_u32),
                ("max_seq_len", c_u32), ("reserved", c_u32), ("rope_theta", ctypes.c_double),
                ("rms_eps", c_f32), ("reserved2", c_f32)]


READ = ctypes.CFUNCTYPE(c_i32, c_p, ctypes.c_char_p, c_u64, c_u64, ctypes.POINTER(c_f32), c_p,
                        ctypes.c_size_t)
RULE = ctypes.CFUNCTYPE(c_i32, c_p, ctypes.c_char_p, c_u64, ctypes.POINTER(c_u64),
                        ctypes.POINTER(c_f32), ctypes.POINTER(c_i32), c_p, ctypes.c_size_t)


class Weights(ctypes.Structure):  # lmdref_cuda_weights
    _fields_ = [("ctx", c_p), ("random", c_i32), ("reserved", c_u32), ("read", READ),
                ("rule", RULE)]


class Gemv(ctypes.Structure):  # lmdref_cuda_probe_gemv (quant_probe.h)
    _fields_ = [("layer", c_i32), ("which", c_i32), ("form", c_i32), ("pos", c_i32),
                ("x", ctypes.POINTER(c_f32)), ("norm", ctypes.POINTER(c_f32)), ("eps", c_f32),
                ("reserved", c_u32), ("residual", ctypes.POINTER(c_f32)),
                ("out", ctypes.POINTER(c_f32))]


QKV, O, GATE_UP, DOWN, LM_HEAD = range(5)
NAMES = ["qkv", "o", "gate_up", "down", "lm_head"]
Y, RESIDUAL, GATE_UP_ACT, QKV_ROPE = range(4)

# name, hidden, intermediate, layers, heads, kv_heads, vocab
SHAPES = [("synthetic-896", 896, 4864, 2, 14, 2, 1000),
          ("synthetic-1536", 1536, 2816, 1, 12, 2, 1000)]
EPS = 1e-6
THETA = 1e6


def fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(c_f32)) if a is not None else None


def round_t(a, dt):
    """float32 → the 16-bit dtype (nearest even) → float32."""
    a = np.asarray(a, F32)
    if dt == "fp16":
        return a.astype(np.float16).astype(F32)
    b = a.view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(F32)


def ulp_t(a, dt):
    """One rounding step of the dtype at |a| (its subnormal step near 0)."""
    bits = 10 if dt == "fp16" else 7
    a = np.maximum(np.abs(np.asarray(a, np.float64)), 2.0 ** -14 if dt == "fp16" else 2.0 ** -126)
    return np.exp2(np.floor(np.log2(a)) - bits)


def synth_weights(shape, seed):
    """Random checkpoint tensors (fp32) for a shape: row magnitudes spread
    over e^±2, q_proj row 3 all zeros, q_proj row 5 with an outlier."""
    _, h, inter, layers, heads, kv, vocab = shape
    hd = h // heads
    rng = np.random.default_rng(seed)

    def mat(rows, cols):
        w = rng.standard_normal((rows, cols), dtype=F32) * F32(0.05)
        return w * np.exp(rng.uniform(-2, 2, size=(rows, 1))).astype(F32)

    def vec(n, base):
        return (base + 0.1 * rng.standard_normal(n)).astype(F32)

    t = {}
    for l in range(layers):
        p = f"model.layers.{l}."
        q = mat(heads * hd, h)
        q[3] = 0
        q[5, 7] = 40
        t[p + "self_attn.q_proj.weight"] = q
        t[p + "self_attn.k_proj.weight"] = mat(kv * hd, h)
        t[p + "self_attn.v_proj.weight"] = mat(kv * hd, h)
        t[p + "self_attn.o_proj.weight"] = mat(h, heads * hd)
        t[p + "mlp.gate_proj.weight"] = mat(inter, h)
        t[p + "mlp.up_proj.weight"] = mat(inter, h)
        t[p + "mlp.down_proj.weight"] = mat(h, inter)
        t[p + "self_attn.q_proj.bias"] = vec(heads * hd, 0)
        t[p + "self_attn.k_proj.bias"] = vec(kv * hd, 0)
        t[p + "self_attn.v_proj.bias"] = vec(kv * hd, 0)
        t[p + "input_layernorm.weight"] = vec(h, 1)
        t[p + "post_attention_layernorm.weight"] = vec(h, 1)
    t["model.embed_tokens.weight"] = mat(vocab, h)
    t["lm_head.weight"] = mat(vocab, h)
    t["model.norm.weight"] = vec(h, 1)
    return t


def expected(t, shape, fmt, layer, which, tp, rank):
    _, h, inter, _, heads, kv, vocab = shape
    hd = h // heads
    ql, kvl, il = heads // tp * hd, kv // tp * hd, inter // tp
    p = f"model.layers.{layer}."
    cols = slice(None)
    if which == QKV:
        w = np.concatenate([t[p + "self_attn.q_proj.weight"][rank * ql:(rank + 1) * ql],
                            t[p + "self_attn.k_proj.weight"][rank * kvl:(rank + 1) * kvl],
                            t[p + "self_attn.v_proj.weight"][rank * kvl:(rank + 1) * kvl]])
    elif which == O:
        w, cols = t[p + "self_attn.o_proj.weight"], slice(rank * ql, (rank + 1) * ql)
    elif which == GATE_UP:
        w = np.concatenate([t[p + "mlp.gate_proj.weight"][rank * il:(rank + 1) * il],
                            t[p + "mlp.up_proj.weight"][rank * il:(rank + 1) * il]])
    elif which == DOWN:
        w, cols = t[p + "mlp.down_proj.weight"], slice(rank * il, (rank + 1) * il)
    else:
        per = -(-vocab // tp)
        v0 = min(vocab, rank * per)
        w = t["lm_head.weight"][v0:min(vocab, v0 + per)]
    q, s = quant_ref.quantize(fmt, w)  # whole rows: the scale is the full row's
    q = np.ascontiguousarray(q[:, cols]).view(np.uint8)
    vals = q.view(np.int8).astype(F32) if fmt == "int8" else quant_ref.e4m3_decode(q)
    return q, s, vals


def first_diff(got, want, what):
    bad = np.argwhere(got != want)
    if len(bad) == 0:
        return None
    i = tuple(int(v) for v in bad[0])
    where = f"row {i[0]}" + (f" col {i[1]}" if len(i) > 1 else "")
    return (f"{what}: {len(bad)} of {got.size} differ, first at {where}: "
            f"got {got[i].item()!r} want {want[i].item()!r}")


def first_over(err, tol, got, ref, what):
    bad = np.flatnonzero(err > tol)
    if len(bad) == 0:
        return None
    i = int(bad[0])
    return (f"{what}: {len(bad)} of {err.size} outside the tolerance, first at row {i}: "
            f"got {got[i]:.6g} want {ref[i]:.6g} (tolerance {tol[i]:.3g}); "
            f"max error {float(err.max()):.3g}")


class Probe:
    def __init__(self, lib, shape, tensors, fmt, dt, tp, rank, q_head):
        self.lib, self.shape, self.t = lib, shape, tensors
        self.dt = dt
        flat = {k: np.ascontiguousarray(v, F32).ravel() for k, v in tensors.items()}

        def read(_ctx, name, first, count, out, err, cap):
            a = flat.get(name.decode())
            if a is None or first + count > a.size:
                ctypes.memmove(err, b"no such tensor\0", 15)
                return 2
            ctypes.memmove(out, a[first:first + count].ctypes.data, count * 4)
            return 0

        def rule(*_):
            return 2

        self._cb = (READ(read), RULE(rule), flat)  # kept alive while the probe is open
        _, h, inter, layers, heads, kv, vocab = shape
        m = Model(vocab=vocab, hidden=h, intermediate=inter, layers=layers, heads=heads,
                  kv_heads=kv, head_dim=h // heads, tied=0, max_seq_len=4096, rope_theta=THETA,
                  rms_eps=EPS)
        w = Weights(ctx=None, random=0, read=self._cb[0], rule=self._cb[1])
        self.h = c_p()
        self._call(lib.lmdref_cuda_probe_open, ctypes.byref(m), ctypes.byref(w), dt.encode(),
                   fmt.encode(), int(q_head), tp, rank, 0, ctypes.byref(self.h))

    def _call(self, fn, *args):
        err = ctypes.create_string_buffer(1024)
        rc = fn(*args, err, ctypes.c_size_t(1024))
        if rc != 0:
            raise RuntimeError(f"{fn.__name__}: {rc}: {err.value.decode(errors='replace')}")

    def shape_of(self, which):
        r, c = c_i32(), c_i32()
        self._call(self.lib.lmdref_cuda_probe_shape, self.h, which, ctypes.byref(r), ctypes.byref(c))
        return r.value, c.value

    def matrix(self, layer, which, half):
        rows, cols = self.shape_of(which)
        q = np.zeros((rows, cols), np.uint8)
        s = np.zeros(rows, F32)
        deq = np.zeros((rows, cols), F32) if half >= 0 else None
        self._call(self.lib.lmdref_cuda_probe_matrix, self.h, layer, which, half,
                   q.ctypes.data_as(c_p), fptr(s), fptr(deq))
        return q, s, deq

    def gemv(self, layer, which, form, x, norm=None, residual=None, pos=0):
        rows, _ = self.shape_of(which)
        out = np.zeros(rows, F32)
        x = np.ascontiguousarray(x, F32)
        norm = None if norm is None else np.ascontiguousarray(norm, F32)
        residual = None if residual is None else np.ascontiguousarray(residual, F32)
        g = Gemv(layer=layer, which=which, form=form, pos=pos, x=fptr(x), norm=fptr(norm), eps=EPS,
                 residual=fptr(residual), out=fptr(out))
        self._call(self.lib.lmdref_cuda_probe_run, self.h, ctypes.byref(g))
        return out

    def close(self):
        if self.h:
            self.lib.lmdref_cuda_probe_close(self.h)
            self.h = None


def rmsnorm_ref(x, w, dt):
    """T(w · T(x · rsqrt(mean(x²) + eps))) in fp32, as the kernels round."""
    r = F32(1) / np.sqrt(F32(np.sum(x.astype(np.float64) ** 2) / x.size) + F32(EPS))
    return round_t(w * round_t(x * r, dt), dt)


def check_matrix(probe, want, fmt, dt, layer, which, tp, rank, rng):
    """Every check of one matrix (want: expected()'s): a list of problems
    (empty when all hold)."""
    t, shape = probe.t, probe.shape
    problems = []
    name = f"layer {layer} {NAMES[which]}" if which != LM_HEAD else "lm_head"
    want_q, want_s, vals = want
    rows, cols = want_q.shape
    got_rows, got_cols = probe.shape_of(which)
    if (got_rows, got_cols) != (rows, cols):
        return [f"{name}: the GPU's matrix is {got_rows}x{got_cols}, numpy's {rows}x{cols}"]
    halves = [0, 1] if which != LM_HEAD else [-1]
    for half in halves:
        q, s, deq = probe.matrix(layer, which, half)
        for p in (first_diff(q, want_q, f"{name} bytes"),
                  first_diff(s.view(np.uint32), want_s.view(np.uint32), f"{name} scales (bits)")):
            if p and p not in problems:
                problems.append(p)
        if deq is not None:
            want_deq = round_t(quant_ref.dequantize(fmt, want_q.view(np.int8) if fmt == "int8"
                                                    else want_q, want_s), dt)
            p = first_diff(deq, want_deq, f"{name} prefill scratch half {half}")
            if p:
                problems.append(p)
    if problems:
        return problems  # the kernels would only repeat the difference
    # Decode kernels against float64 products of numpy's bytes and scales.
    s64 = want_s.astype(np.float64)
    v64 = vals.astype(np.float64)
    x = round_t(rng.standard_normal(cols).astype(F32), dt)

    def product(xin):
        xin = xin.astype(np.float64)
        return s64 * (v64 @ xin), s64 * (np.abs(v64) @ np.abs(xin))

    ref, bound = product(x)
    y = probe.gemv(layer, which, Y, x)
    tol = 5e-4 * bound + 1e-30
    p = first_over(np.abs(y - ref), tol, y, ref, f"{name} decode y")
    if p:
        problems.append(p)
    if which in (QKV, GATE_UP, LM_HEAD):
        # The RMSNorm fused into the kernel: a few inputs may round one
        # 16-bit step apart from this float32 reference.
        key = ("model.norm.weight" if which == LM_HEAD else
               f"model.layers.{layer}." + ("input_layernorm.weight" if which == QKV
                                           else "post_attention_layernorm.weight"))
        nw = round_t(t[key], dt)
        xr = round_t((3 * rng.standard_normal(cols)).astype(F32), dt)
        xn = rmsnorm_ref(xr, nw, dt)
        ref_n, bound_n = product(xn)
        flip = s64 * np.max(np.abs(v64) * ulp_t(xn, dt)[None, :], axis=1)
        yn = probe.gemv(layer, which, Y, xr, norm=nw)
        p = first_over(np.abs(yn - ref_n), 5e-4 * bound_n + 8 * flip + 1e-30, yn, ref_n,
                       f"{name} decode y with the RMSNorm fused")
        if p:
            problems.append(p)
    if which in (O, DOWN):
        res = round_t(rng.standard_normal(rows).astype(F32), dt)
        got = probe.gemv(layer, which, RESIDUAL, x, residual=res)
        want = round_t(res + round_t(ref.astype(F32), dt), dt)
        tol_r = 2 * ulp_t(np.maximum(np.abs(want), np.abs(ref)), dt) + tol
        p = first_over(np.abs(got - want), tol_r, got, want, f"{name} decode residual add")
        if p:
            problems.append(p)
    if which == GATE_UP:
        act = probe.gemv(layer, which, GATE_UP_ACT, x)[:rows // 2]
        g = round_t(ref[:rows // 2].astype(F32), dt)
        u = round_t(ref[rows // 2:].astype(F32), dt)
        with np.errstate(over="ignore"):
            want = round_t(round_t(g / (F32(1) + np.exp(-g)), dt) * u, dt)
        tol_a = 4 * ulp_t(want, dt) + 1e-3 * float(np.abs(want).max())
        p = first_over(np.abs(act - want), tol_a, act, want, f"{name} decode SwiGLU")
        if p:
            problems.append(p)
    if which == QKV:
        _, h, _, _, heads, kv, _ = shape
        hd = h // heads
        qh, kvh, half = heads // tp, kv // tp, hd // 2
        pos = 3
        pre = f"model.layers.{layer}.self_attn."
        bias = np.concatenate([t[pre + "q_proj.bias"][rank * qh * hd:(rank + 1) * qh * hd],
                               t[pre + "k_proj.bias"][rank * kvh * hd:(rank + 1) * kvh * hd],
                               t[pre + "v_proj.bias"][rank * kvh * hd:(rank + 1) * kvh * hd]])
        bias = round_t(bias, dt)
        got = probe.gemv(layer, which, QKV_ROPE, x, pos=pos)
        yb = (ref.astype(F32) + bias).reshape(qh + 2 * kvh, hd)
        a, b = round_t(yb[:, :half], dt), round_t(yb[:, half:], dt)
        e = (2 * np.arange(half)).astype(F32) / F32(hd)
        inv = (1.0 / np.power(np.float64(F32(THETA)), e.astype(np.float64))).astype(F32)
        ang = (F32(pos) * inv).astype(F32)
        cs, sn = round_t(np.cos(ang), dt), round_t(np.sin(ang), dt)
        lo = round_t(round_t(a * cs, dt) + round_t(-b * sn, dt), dt)
        hi = round_t(round_t(b * cs, dt) + round_t(a * sn, dt), dt)
        rot = np.concatenate([lo, hi], axis=1)
        plain = np.concatenate([a, b], axis=1)
        want = np.where(np.arange(qh + 2 * kvh)[:, None] < qh + kvh, rot, plain).ravel()
        tol_q = 4 * ulp_t(want, dt) + 1e-3 * float(np.abs(want).max())
        p = first_over(np.abs(got - want), tol_q, got, want,
                       f"{name} decode bias+RoPE+cache (q | k | v of position {pos})")
        if p:
            problems.append(p)
    return problems


def run(lib_path, formats, record, dtypes=("fp16", "bf16")):
    """Probes every synthetic shape, format, split and dtype; one record each."""
    lib = ctypes.CDLL(lib_path)
    for fn in ("lmdref_cuda_probe_open", "lmdref_cuda_probe_shape", "lmdref_cuda_probe_matrix",
               "lmdref_cuda_probe_run"):
        getattr(lib, fn).restype = c_i32
    all_ok = True
    for si, shape in enumerate(SHAPES):
        tensors = synth_weights(shape, seed=100 + si)
        for fmt in formats:
            for tp, rank in ([(1, 0), (2, 1)] if si == 0 else [(1, 0)]):
                labels = {dt: f"{fmt} {shape[0]} {dt} tp={tp} rank={rank}" for dt in dtypes}
                print(f"probe {fmt} {shape[0]} tp={tp} rank={rank} ({', '.join(dtypes)}) ...",
                      flush=True)
                problems = {dt: [] for dt in dtypes}
                probes = {}
                checked = 0
                try:
                    for dt in dtypes:
                        try:
                            probes[dt] = Probe(lib, shape, tensors, fmt, dt, tp, rank, q_head=True)
                        except Exception as e:  # a refused shape or a CUDA error: say which
                            problems[dt].append(f"open: {type(e).__name__}: {e}")
                    mats = [(l, w) for l in sorted({0, shape[3] - 1})
                            for w in (QKV, O, GATE_UP, DOWN)] + [(0, LM_HEAD)]
                    for layer, which in mats:
                        want = expected(tensors, shape, fmt, layer, which, tp, rank)
                        checked += 1
                        for dt, probe in probes.items():
                            rng = np.random.default_rng(7 + layer * 5 + which)
                            try:
                                problems[dt] += check_matrix(probe, want, fmt, dt, layer, which,
                                                             tp, rank, rng)
                            except Exception as e:
                                problems[dt].append(f"layer {layer} {NAMES[which]}: "
                                                    f"{type(e).__name__}: {e}")
                finally:
                    for probe in probes.values():
                        probe.close()
                for dt in dtypes:
                    for p in problems[dt][:12]:
                        print(f"     {dt}: {p}", flush=True)
                    record("quant", f"probe {labels[dt]}: bytes, scales, prefill scratch, decode",
                           not problems[dt], matrices=checked, problems=len(problems[dt]),
                           first_problem=problems[dt][0] if problems[dt] else "")
                    all_ok = all_ok and not problems[dt]
    return all_ok


# The decode kernels of qwen2.5-14b and -32b (one GPU): name, form, rows,
# cols, norm fused (q|k|v: 40 query heads, 8 kv heads, head_dim 128).
SPEED = [("14b q|k|v+norm+rope", QKV_ROPE, 7168, 5120, True),
         ("14b o+residual", RESIDUAL, 5120, 5120, False),
         ("14b gate|up+norm+swiglu", GATE_UP_ACT, 27648, 5120, True),
         ("14b down+residual", RESIDUAL, 5120, 13824, False),
         ("32b gate|up+norm+swiglu", GATE_UP_ACT, 55296, 5120, True),
         ("32b down+residual", RESIDUAL, 5120, 27648, False),
         ("lm_head 152064 rows", Y, 152064, 5120, True)]


def speed(lib_path, out_path, copy_bw, formats, dt="fp16", iters=200):
    """Times each decode kernel alone (lmdref_cuda_probe_speed) and prints its
    weight bandwidth against the copy bandwidth; one JSON line each."""
    import json
    lib = ctypes.CDLL(lib_path)
    lib.lmdref_cuda_probe_speed.restype = c_i32
    print(f"| kernel ({dt}) | format | rows x cols | us | weight GB/s | of copy bw |")
    print("|---|---|---|---|---|---|")
    with open(out_path, "w") as f:
        for fmt in formats:
            for name, form, rows, cols, norm in SPEED:
                sec = ctypes.c_double()
                err = ctypes.create_string_buffer(1024)
                rc = lib.lmdref_cuda_probe_speed(dt.encode(), fmt.encode(), form, rows, cols, 40, 8,
                                                 128, int(norm), iters, ctypes.byref(sec), err,
                                                 ctypes.c_size_t(1024))
                if rc != 0:
                    print(f"| {name} | {fmt} | {rows}x{cols} | failed: {err.value.decode()} |||")
                    continue
                weight = rows * cols + 4 * rows
                bw = weight / sec.value
                frac = f"{100 * bw / copy_bw:.1f}%" if copy_bw else "?"
                print(f"| {name} | {fmt} | {rows}x{cols} | {sec.value * 1e6:.1f} | {bw / 1e9:.0f} "
                      f"| {frac} |", flush=True)
                f.write(json.dumps({"measure": "qgemv", "kernel": name, "format": fmt, "dtype": dt,
                                    "rows": rows, "cols": cols, "seconds": sec.value,
                                    "weight_bytes_per_s": bw, "copy_bytes_per_s": copy_bw}) + "\n")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    libdir = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "--speed":
        import json
        copy_bw = None
        if len(sys.argv) > 4 and os.path.exists(sys.argv[4]):
            for line in open(sys.argv[4]):
                if line.startswith("{") and json.loads(line).get("measure") == "copybw":
                    copy_bw = json.loads(line)["bytes_per_s"]
        speed(os.path.join(libdir, "liblmdrive_ref_cuda.so"), sys.argv[3], copy_bw,
              sys.argv[5:] or ["int8"])
        return
    formats = sys.argv[2:] or ["int8"]

    def record(kind, name, ok, **kw):
        extra = " ".join(f"{k}={v}" for k, v in kw.items() if k != "first_problem")
        print(f"{'ok  ' if ok else 'FAIL'} {kind:5s} {name} {extra}", flush=True)

    ok = run(os.path.join(libdir, "liblmdrive_ref_cuda.so"), formats, record)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
