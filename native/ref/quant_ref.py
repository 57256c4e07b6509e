"""The plain reference of the ref engine's weight quantizers (quantize.h), in
numpy, and a writer of dequantized checkpoints for parity with transformers.

int8:  scale = max|w| / 127 (float32 division); q = clip(rint(w / scale), -127, 127)
       (float32 division, rint rounds half to even); an all-zero row: scale 0, q 0.
fp8:   scale = max|w| / 448; q = E4M3(w / scale), nearest even, saturating at ±448.
Dequantized weight = float32(q) * scale (one float32 product).

Needs numpy only (ctest skips the check without it). `python3 quant_ref.py check LIB` compares these functions bit
for bit with the engine's own quantizer (lmdrive_ref_quantize in
liblmdrive_ref.so) on random rows and rows made of ties.
"""
import ctypes
import json
import os
import struct
import sys

try:
    import numpy as np
except ImportError:  # ctest runs `check` everywhere: 77 marks it skipped
    if __name__ == "__main__":
        print("numpy is not installed: quantizer check skipped")
        sys.exit(77)
    raise

F32 = np.float32


def _scales(w, qmax):
    w = np.asarray(w, dtype=F32)
    a = np.abs(w)
    if not np.isfinite(a).all():
        raise ValueError("a NaN or infinite weight cannot be quantized")
    return w, (a.max(axis=1) / F32(qmax)).astype(F32)


def quantize_int8(w):
    """rows × cols float32 → (int8 rows × cols, float32 scales)."""
    w, scale = _scales(w, 127)
    safe = np.where(scale == 0, F32(1), scale)
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    q[scale == 0] = 0
    return q, scale


def e4m3_encode(v):
    """float32 array → E4M3 bytes (uint8): nearest even, saturating, NaN → 0x7f."""
    v = np.asarray(v, dtype=F32)
    sign = np.where(np.signbit(v), 0x80, 0).astype(np.uint8)
    a = np.abs(v).astype(np.float64)  # exact copies; every step below is exact or one rint
    _, e = np.frexp(a)
    e = e - 1  # a in [2^e, 2^(e+1))
    sub = (a == 0) | (e < -6)
    m_sub = np.rint(np.ldexp(a, 9))
    m_norm = np.rint(np.ldexp(a, 3 - np.where(sub, 0, e)))
    code = np.where(sub, m_sub, (e + 7) * 8 + m_norm - 8)
    code = np.where(a >= 448, 0x7e, code)
    code = np.where(np.isnan(a), 0x7f, code)
    return (code.astype(np.uint8) | sign).astype(np.uint8)


def e4m3_decode(b):
    b = np.asarray(b, dtype=np.uint8).astype(np.int64)
    e, m = (b >> 3) & 15, b & 7
    mag = np.where(e == 0, np.ldexp(m.astype(np.float64), -9),
                   np.ldexp((8 + m).astype(np.float64), e - 10))
    mag = np.where((e == 15) & (m == 7), np.nan, mag)
    return np.where(b & 0x80, -mag, mag).astype(F32)


def quantize_fp8(w):
    w, scale = _scales(w, 448)
    safe = np.where(scale == 0, F32(1), scale)
    q = e4m3_encode((w / safe[:, None]).astype(F32))
    q[scale == 0] = 0
    return q, scale


def quantize(fmt, w):
    return {"int8": quantize_int8, "fp8": quantize_fp8}[fmt](w)


def dequantize(fmt, q, scale):
    vals = q.astype(F32) if fmt == "int8" else e4m3_decode(q)
    return (vals * scale[:, None]).astype(F32)


LINEAR = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
          "mlp.down_proj.weight")
_DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] == "BF16":
            raw = np.frombuffer(data, np.uint16, offset=t["data_offsets"][0],
                                count=(t["data_offsets"][1] - t["data_offsets"][0]) // 2)
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            dt = _DTYPES[t["dtype"]]
            arr = np.frombuffer(data, dt, offset=t["data_offsets"][0],
                                count=(t["data_offsets"][1] - t["data_offsets"][0]) // np.dtype(dt).itemsize)
        out[name] = arr.reshape(t["shape"]).astype(F32)
    return out


def write_safetensors(path, tensors, dtype=np.float16):
    header, blobs, at = {}, [], 0
    tag = {np.float16: "F16", np.float32: "F32"}[dtype]
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name].astype(dtype)).tobytes()
        header[name] = {"dtype": tag, "shape": list(tensors[name].shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def write_dequantized(src_dir, dst_dir, fmt, lm_head=False, dtype=np.float16):
    """A checkpoint of src_dir (one model.safetensors) whose Linear weights (and
    lm_head when asked; a tied model then gets an lm_head of its own) are the
    dequantized ones, in dtype: what transformers runs for the parity of a
    quantized engine."""
    os.makedirs(dst_dir, exist_ok=True)
    t = read_safetensors(os.path.join(src_dir, "model.safetensors"))
    cfg = json.load(open(os.path.join(src_dir, "config.json")))
    names = [n for n in t if n.endswith(LINEAR)]
    if lm_head:
        if "lm_head.weight" not in t:
            t["lm_head.weight"] = t["model.embed_tokens.weight"].copy()
            cfg["tie_word_embeddings"] = False
        names.append("lm_head.weight")
    for n in names:
        q, s = quantize(fmt, t[n])
        t[n] = dequantize(fmt, q, s)
    write_safetensors(os.path.join(dst_dir, "model.safetensors"), t, dtype)
    json.dump(cfg, open(os.path.join(dst_dir, "config.json"), "w"), indent=1)
    for extra in ("generation_config.json",):
        p = os.path.join(src_dir, extra)
        if os.path.exists(p):
            open(os.path.join(dst_dir, extra), "w").write(open(p).read())


def test_rows(rows=96, cols=333, seed=5):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(F32) * F32(0.05)
    w[1, 0] = -127  # amax 127: w / scale = w, and k + 0.5 are exact ties
    w[1, 1:] = (np.arange(1, cols) % 250 - 125 + 0.5).astype(F32)
    w[2] = 0
    w[3, cols // 2] = 1000
    w[5] *= F32(1e-30)
    w[6, 0] = 448  # amax 448: fp8's w / scale = w, with ties between E4M3 values
    w[6, 1:] = (np.arange(1, cols) % 64 * 0.0625 + 0.03125).astype(F32)
    return w


def check(lib_path):
    """The engine's quantizer (C++) against this file's, bit for bit."""
    lib = ctypes.CDLL(lib_path)
    fn = lib.lmdrive_ref_quantize
    fn.restype = ctypes.c_int32
    ok = True
    for fmt in ("int8", "fp8"):
        for seed in range(4):
            w = test_rows(seed=seed)
            q = np.zeros(w.shape, np.uint8)
            s = np.zeros(w.shape[0], F32)
            err = (ctypes.c_char * 1200)()
            rc = fn(fmt.encode(), w.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint64(w.shape[0]),
                    ctypes.c_uint64(w.shape[1]), q.ctypes.data_as(ctypes.c_void_p),
                    s.ctypes.data_as(ctypes.c_void_p), err)
            want_q, want_s = quantize(fmt, w)
            same = rc == 0 and np.array_equal(q, want_q.view(np.uint8)) and \
                np.array_equal(s.view(np.uint32), want_s.view(np.uint32))
            ok = ok and same
            print(f"{'ok  ' if same else 'FAIL'} quantizer {fmt} seed={seed} {w.shape[0]}x{w.shape[1]}: "
                  f"C++ and numpy {'identical' if same else 'differ'}"
                  f" ({int((q != want_q.view(np.uint8)).sum())} bytes, "
                  f"{int((s != want_s).sum())} scales differ)")
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    print(__doc__)
    sys.exit(2)
