#!/usr/bin/env python3
"""PyTorch-side measurements for docs/benchmarks.md, taken in the same device
run as the ref engine's figures (gpu_check.sh calls it):

  copybw            device-to-device copy bandwidth of one GPU, (bytes read +
                    bytes written) / time: the roofline's denominator
  gemm PRESET N     the model's prefill matrix products alone for N tokens,
                    fp16, each in its fastest form: q/k/v and gate/up fused
                    (as the engine runs them) or separate, through
                    torch.matmul, F.linear or a pre-transposed weight; the
                    fastest of each, times the layers
  attn PRESET N     causal attention alone over N tokens (the preset's heads,
                    GQA) through torch's SDPA with each backend (cuDNN, flash,
                    memory-efficient); the fastest, times the layers. With
                    gemm, the prefill floor
  gemv PRESET       one token's matrix-vector products through cuBLAS
                    (F.linear with one row) on each weight shape: bandwidth
  gemm8 PRESET N    the prefill's projections as FP8 tensor-core GEMMs
                    (torch._scaled_mm), with and without casting the
                    activations, beside the same GEMMs in fp16
  hf PRESET N NEW   Hugging Face transformers on random weights of the preset's
                    shape, fp16, sdpa: TTFT (generate of one token) and decode
                    speed ((generate of 1+NEW tokens − TTFT) / NEW)
  hfstatic PRESET N NEW   the same with a static KV cache and compiled
                    decoding (generate's cache_implementation="static")
  floors PRESET N…  copybw, then gemm and attn for each N, then gemv: every
                    floor in one process (one start of PyTorch)

Each prints one JSON line.
"""
import json
import sys
import time

import torch

SHAPES = {  # hidden, intermediate, layers, heads, kv_heads, vocab, rope_theta, rms_eps
    "qwen2.5-14b": (5120, 13824, 48, 40, 8, 152064, 1e6, 1e-5),
    "qwen2.5-32b": (5120, 27648, 64, 40, 8, 152064, 1e6, 1e-5),
}


def timed(fn, reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2]


def copybw():
    n = 1 << 30  # 2 GiB of fp16 per buffer
    src = torch.randn(n, dtype=torch.float16, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    t = timed(lambda: dst.copy_(src), 20)
    bw = 2 * src.numel() * 2 / t
    print(json.dumps({"measure": "copybw", "gpu": torch.cuda.get_device_name(0),
                      "bytes": 2 * src.numel() * 2, "median_s": t, "bytes_per_s": bw}))


def shapes(preset):
    h, inter, layers, heads, kv, vocab, _, _ = SHAPES[preset]
    hd = h // heads
    return h, inter, layers, heads, kv, vocab, hd, heads * hd, kv * hd


def fastest_linear(x, w, reps=10):
    """The fastest of the ways torch computes x @ w.T (w: [out, in]), and its time."""
    import torch.nn.functional as F
    wt = w.t().contiguous()
    forms = {"matmul": lambda: torch.matmul(x, w.t()), "linear": lambda: F.linear(x, w),
             "pretransposed": lambda: torch.matmul(x, wt)}
    best = None
    for name, fn in forms.items():
        fn()
        t = timed(fn, reps)
        if best is None or t < best[1]:
            best = (name, t)
    del wt
    return best


def gemm(preset, n):
    h, inter, layers, heads, kv, vocab, hd, q, kvd = shapes(preset)
    dt = torch.float16
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(n, h, dtype=dt, device="cuda", generator=g)
    a = torch.randn(n, q, dtype=dt, device="cuda", generator=g)
    act = torch.randn(n, inter, dtype=dt, device="cuda", generator=g)

    def weight(rows, cols):
        return torch.randn(rows, cols, dtype=dt, device="cuda", generator=g) * 0.01

    # Each projection fused (as the engine runs it) or separate: the fastest.
    choices = {
        "qkv": [("fused", [(x, weight(q + 2 * kvd, h))]),
                ("separate", [(x, weight(q, h)), (x, weight(kvd, h)), (x, weight(kvd, h))])],
        "o": [("one", [(a, weight(h, q))])],
        "gate_up": [("fused", [(x, weight(2 * inter, h))]),
                    ("separate", [(x, weight(inter, h)), (x, weight(inter, h))])],
        "down": [("one", [(act, weight(h, inter))])],
    }
    total, parts = 0.0, {}
    for proj, options in choices.items():
        best = None
        for label, mats in options:
            t, forms = 0.0, []
            for xx, w in mats:
                form, tt = fastest_linear(xx, w)
                t += tt
                forms.append(form)
            if best is None or t < best[0]:
                best = (t, f"{label}/{'+'.join(forms)}")
        total += best[0]
        parts[proj] = {"ms": best[0] * 1e3, "form": best[1]}
    t = total * layers
    flops = 2 * n * layers * (h * (q + 2 * kvd) + q * h + h * 2 * inter + inter * h)
    print(json.dumps({"measure": "gemm", "preset": preset, "tokens": n, "median_s": t,
                      "tflops": flops / t / 1e12, "per_layer": parts,
                      "gpu": torch.cuda.get_device_name(0)}))


def gemm8(preset, n):
    """The prefill's four projections of every layer for n tokens as FP8
    tensor-core GEMMs (torch._scaled_mm, E4M3, per-tensor scales, fp16 out;
    sm_89+), beside the same fp16 GEMMs in this run: what an FP8 prefill could
    gain. FP8 GEMMs need FP8 activations too (W8A8): "with_casts" adds the
    per-GEMM cast of the fp16 activations to E4M3."""
    h, inter, layers, heads, kv, vocab, _, _ = SHAPES[preset]
    hd = h // heads
    q, kvd = heads * hd, kv * hd
    f8, dt = torch.float8_e4m3fn, torch.float16
    shapes = [(h, q + 2 * kvd), (q, h), (h, 2 * inter), (inter, h)]  # (in, out)
    xs = [torch.randn(n, k, dtype=dt, device="cuda") for k, _ in shapes]
    ws = [torch.randn(o, k, dtype=dt, device="cuda") * 0.01 for k, o in shapes]
    x8 = [x.to(f8) for x in xs]
    w8 = [w.to(f8) for w in ws]
    one = torch.ones((), dtype=torch.float32, device="cuda")

    def fp16():
        for _ in range(layers):
            for x, w in zip(xs, ws):
                torch.matmul(x, w.t())

    def fp8(casts):
        for _ in range(layers):
            for x, x_8, w in zip(xs, x8, w8):
                a = x.to(f8) if casts else x_8
                torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=dt)

    fp16()
    fp8(True)
    t16, t8, t8c = timed(fp16, 5), timed(lambda: fp8(False), 5), timed(lambda: fp8(True), 5)
    print(json.dumps({"measure": "gemm8", "preset": preset, "tokens": n, "fp16_s": t16,
                      "fp8_s": t8, "fp8_with_casts_s": t8c, "gpu": torch.cuda.get_device_name(0)}))


def attn(preset, n):
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    h, inter, layers, heads, kv, vocab, hd, q, kvd = shapes(preset)
    dt = torch.float16
    g = torch.Generator(device="cuda").manual_seed(2)
    qq = torch.randn(1, heads, n, hd, dtype=dt, device="cuda", generator=g)
    kk = torch.randn(1, kv, n, hd, dtype=dt, device="cuda", generator=g)
    vv = torch.randn(1, kv, n, hd, dtype=dt, device="cuda", generator=g)
    kx = kk.repeat_interleave(heads // kv, dim=1)
    vx = vv.repeat_interleave(heads // kv, dim=1)
    results = {}
    for name in ["CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"]:
        backend = getattr(SDPBackend, name)
        # GQA natively where the backend takes it, else with K/V repeated
        # per query head (the same arithmetic).
        for gqa, (k_, v_) in [(True, (kk, vv)), (False, (kx, vx))]:
            try:
                with sdpa_kernel(backend):
                    fn = lambda: F.scaled_dot_product_attention(qq, k_, v_, is_causal=True,
                                                                enable_gqa=gqa)
                    fn()
                    torch.cuda.synchronize()
                    t = timed(fn, 10)
                results[name.lower()] = {"ms": t * 1e3, "gqa": gqa}
                break
            except Exception as e:  # this backend cannot run these shapes here
                results[name.lower()] = {"error": str(e).splitlines()[0][:160]}
    ok = {k: v for k, v in results.items() if "ms" in v}
    if not ok:
        sys.exit("no SDPA backend ran: " + json.dumps(results))
    best = min(ok, key=lambda k: ok[k]["ms"])
    t = ok[best]["ms"] / 1e3 * layers
    flops = 2 * n * n * hd * heads * layers  # causal: half of 4·n²·hd per head
    print(json.dumps({"measure": "attn", "preset": preset, "tokens": n, "median_s": t,
                      "backend": best, "tflops": flops / t / 1e12, "backends": results,
                      "gpu": torch.cuda.get_device_name(0)}))


def gemv(preset):
    import torch.nn.functional as F
    h, inter, layers, heads, kv, vocab, hd, q, kvd = shapes(preset)
    dt = torch.float16
    out = {}
    for name, rows, cols in [("qkv", q + 2 * kvd, h), ("o", h, q), ("gate_up", 2 * inter, h),
                             ("down", h, inter), ("lm_head", vocab, h)]:
        # Several copies, so that the weights are read from memory, not L2.
        copies = max(2, int(2e9 // (rows * cols * 2)))
        ws = [torch.randn(rows, cols, dtype=dt, device="cuda") for _ in range(min(copies, 8))]
        x = torch.randn(1, cols, dtype=dt, device="cuda")
        i = [0]

        def fn():
            i[0] = (i[0] + 1) % len(ws)
            F.linear(x, ws[i[0]])

        fn()
        t = timed(fn, 30)
        out[name] = {"rows": rows, "cols": cols, "us": t * 1e6,
                     "tb_per_s": rows * cols * 2 / t / 1e12}
        del ws
    print(json.dumps({"measure": "gemv", "preset": preset, "shapes": out,
                      "gpu": torch.cuda.get_device_name(0)}))


def hf(preset, n, new, static=False):
    import transformers
    h, inter, layers, heads, kv, vocab, theta, eps = SHAPES[preset]
    cfg = transformers.Qwen2Config(vocab_size=vocab, hidden_size=h, intermediate_size=inter,
                                   num_hidden_layers=layers, num_attention_heads=heads,
                                   num_key_value_heads=kv, rope_theta=theta, rms_norm_eps=eps,
                                   max_position_embeddings=32768, tie_word_embeddings=False,
                                   use_sliding_window=False)
    t0 = time.time()
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = transformers.Qwen2ForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model = model.to(torch.float16).eval()
    model.config._attn_implementation = "sdpa"
    torch.cuda.synchronize()
    load = time.time() - t0
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (1, n), generator=g).to("cuda")
    mask = torch.ones_like(ids)

    extra = {}
    if static:
        # A static KV cache sized for the whole generation; generate() then
        # compiles the decoding step (torch.compile) on its first use.
        extra = {"cache_implementation": "static"}

    def gen(k):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=mask, max_new_tokens=k, min_new_tokens=k,
                           do_sample=False, pad_token_id=0, **extra)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    t = time.perf_counter()
    if static:
        gen(1 + new)  # compiles the decoding step for this cache length
        gen(1 + new)  # a second pass with the compiled graphs in place
    else:
        gen(2)
    warm = time.perf_counter() - t
    ttft = gen(1)
    total = gen(1 + new)
    print(json.dumps({"measure": "hfstatic" if static else "hf", "preset": preset,
                      "prompt_tokens": n, "new_tokens": new, "warmup_s": warm,
                      "ttft_s": ttft, "decode_tok_s": new / (total - ttft), "init_s": load,
                      "transformers": transformers.__version__, "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(0)}))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "copybw":
        copybw()
    elif what == "gemm":
        gemm(sys.argv[2], int(sys.argv[3]))
    elif what == "gemm8":
        gemm8(sys.argv[2], int(sys.argv[3]))
    elif what == "attn":
        attn(sys.argv[2], int(sys.argv[3]))
    elif what == "gemv":
        gemv(sys.argv[2])
    elif what == "hf":
        hf(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif what == "floors":
        copybw()
        for n in sys.argv[3:]:
            gemm(sys.argv[2], int(n))
            torch.cuda.empty_cache()
            attn(sys.argv[2], int(n))
            torch.cuda.empty_cache()
        gemv(sys.argv[2])
    elif what == "hfstatic":
        hf(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), static=True)
    else:
        sys.exit(f"unknown measurement {what}")
