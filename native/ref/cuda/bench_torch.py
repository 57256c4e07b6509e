#!/usr/bin/env python3
"""PyTorch-side measurements for docs/benchmarks.md, taken in the same device
run as the ref engine's figures (gpu_check.sh calls it):

  copybw            device-to-device copy bandwidth of one GPU, (bytes read +
                    bytes written) / time: the roofline's denominator
  gemm PRESET N     the model's prefill matrix products alone for N tokens
                    through cuBLAS (torch.matmul), fp16, events around all layers
  gemm8 PRESET N    the same products as FP8 tensor-core GEMMs (torch._scaled_mm),
                    with and without casting the activations, beside fp16
  hf PRESET N NEW   Hugging Face transformers on random weights of the preset's
                    shape, fp16, sdpa: TTFT (generate of one token) and decode
                    speed ((generate of 1+NEW tokens − TTFT) / NEW)

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


def gemm(preset, n):
    h, inter, layers, heads, kv, vocab, _, _ = SHAPES[preset]
    hd = h // heads
    q, kvd = heads * hd, kv * hd
    dt = torch.float16
    x = torch.randn(n, h, dtype=dt, device="cuda")
    a = torch.randn(n, q, dtype=dt, device="cuda")
    act = torch.randn(n, inter, dtype=dt, device="cuda")
    w_qkv = torch.randn(q + 2 * kvd, h, dtype=dt, device="cuda") * 0.01
    w_o = torch.randn(h, q, dtype=dt, device="cuda") * 0.01
    w_gu = torch.randn(2 * inter, h, dtype=dt, device="cuda") * 0.01
    w_d = torch.randn(h, inter, dtype=dt, device="cuda") * 0.01

    def run():
        for _ in range(layers):
            torch.matmul(x, w_qkv.t())
            torch.matmul(a, w_o.t())
            torch.matmul(x, w_gu.t())
            torch.matmul(act, w_d.t())

    run()
    t = timed(run, 5)
    flops = 2 * n * layers * (h * (q + 2 * kvd) + q * h + h * 2 * inter + inter * h)
    print(json.dumps({"measure": "gemm", "preset": preset, "tokens": n, "median_s": t,
                      "tflops": flops / t / 1e12, "gpu": torch.cuda.get_device_name(0)}))


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


def hf(preset, n, new):
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

    def gen(k):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=mask, max_new_tokens=k, min_new_tokens=k,
                           do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    gen(2)  # warm-up
    ttft = gen(1)
    total = gen(1 + new)
    print(json.dumps({"measure": "hf", "preset": preset, "prompt_tokens": n, "new_tokens": new,
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
    elif what == "hf":
        hf(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown measurement {what}")
