#!/usr/bin/env python3
"""The speed bars of weight-only quantization (gpu_check.sh step `quant`),
from the records of one run: fp16, int8 (and fp8) of the same workloads on
one GPU, and the copy bandwidth measured in the same run.

usage: quant_bars.py OUT_DIR

Bars (per model: qwen2.5-14b 10k→800, qwen2.5-32b 20k→1000):
  decode   int8 decode tok/s ≥ 1.7 × fp16 decode tok/s
  roofline int8 decode tok/s ≥ 85 % of copy bandwidth / bytes per step, where
           bytes per step = int8 Linear weights + their fp32 scales (one per
           output row) + lm_head in fp16 (not quantized by default) + norms and
           biases + the KV cache (fp16) at the run's mean context
           (prompt + new/2)
  prefill  int8 TTFT ≤ fp16 TTFT (ratio printed; "no slower")
Decode and TTFT are the digest's (host clock, median of the repeats); the
device-clock figures are printed beside them.
"""
import json
import os
import sys

SHAPES = {  # hidden, intermediate, layers, heads, kv_heads, vocab
    "qwen2.5-14b": (5120, 13824, 48, 40, 8, 152064),
    "qwen2.5-32b": (5120, 27648, 64, 40, 8, 152064),
}
RUNS = [("qwen2.5-14b", "q14"), ("qwen2.5-32b", "q32")]


def step_bytes(preset, context, weight_bytes):
    """Bytes one decode step reads with Linear weights of weight_bytes each."""
    h, inter, layers, heads, kv, vocab = SHAPES[preset]
    hd = h // heads
    q, kvd = heads * hd, kv * hd
    linear = h * (q + 2 * kvd) + q * h + 3 * h * inter
    rows = (q + 2 * kvd) + h + 2 * inter + h
    scales = 4 * rows if weight_bytes == 1 else 0
    other = ((q + 2 * kvd) + 2 * h) * 2  # biases and norms, fp16
    per_layer = linear * weight_bytes + scales + other
    head = vocab * h * 2 + h * 2  # lm_head and the final norm, fp16
    kv_bytes = layers * 2 * kvd * 2 * context
    return layers * per_layer + head + kv_bytes


def load(path):
    if not os.path.exists(path):
        return None
    recs = [json.loads(l) for l in open(path) if l.strip()]
    recs = [r for r in recs if r.get("status") == "ok" and r.get("metrics")]
    if not recs:
        return None
    m = [r["metrics"] for r in recs]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    new = m[0]["output_tokens"]
    return {
        "prompt": recs[0]["prompt"].get("tokens", 0), "new": new,
        "dtype": recs[0]["engine"].get("dtype", "?"),
        "ttft": med([x["ttft_s"] for x in m]),
        "decode": med([x["decode_tok_s"] for x in m]),
        "dev_decode": med([(new - 1) / x["device_decode_s"] for x in m if x.get("device_decode_s")] or [0]),
        "dev_prefill": med([x.get("device_prefill_s") or 0 for x in m]),
    }


def main():
    d = sys.argv[1]
    bw, g8 = None, None
    tj = os.path.join(d, "quant-torch.jsonl")
    if os.path.exists(tj):
        for line in open(tj):
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if j["measure"] == "copybw":
                bw = j["bytes_per_s"]
            elif j["measure"] == "gemm8":
                g8 = j
    print(f"copy bandwidth (read + write) in this run: {bw / 1e12:.3f} TB/s" if bw else
          "copy bandwidth: not measured (bench_torch.py copybw failed)")
    print("| run | dtype | TTFT s (device) | decode tok/s (device) |")
    print("|---|---|---|---|")
    results, missed = {}, 0
    for preset, tag in RUNS:
        for w in ("fp16", "int8", "fp8"):
            r = load(os.path.join(d, f"run-{tag}-{w}.jsonl"))
            results[(preset, w)] = r
            if r:
                print(f"| {preset} {r['prompt']}→{r['new']} {w} | {r['dtype']} | {r['ttft']:.3f} "
                      f"({r['dev_prefill']:.3f}) | {r['decode']:.2f} ({r['dev_decode']:.2f}) |")
    print()

    def bar(name, ok, text):
        nonlocal missed
        missed += 0 if ok else 1
        print(f"{'met   ' if ok else 'MISSED'} {name}: {text}")

    for preset, _ in RUNS:
        base = results[(preset, "fp16")]
        for w in ("int8", "fp8"):
            r = results[(preset, w)]
            if not r or not base:
                if w == "int8":
                    bar(f"{preset} {w}", False, "no record (the run failed or was skipped)")
                continue
            ratio = r["decode"] / base["decode"]
            if w == "int8":
                bar(f"{preset} int8 decode", ratio >= 1.7, f"{ratio:.2f}x fp16 (bar >= 1.7x)")
            else:
                print(f"       {preset} fp8 decode: {ratio:.2f}x fp16 (no bar)")
            if bw:
                roof = bw / step_bytes(preset, r["prompt"] + r["new"] / 2, 1)
                frac = r["decode"] / roof
                text = (f"{r['decode']:.1f} tok/s = {100 * frac:.1f}% of the 8-bit roofline "
                        f"{roof:.1f} tok/s (bar >= 85%)")
                if w == "int8":
                    bar(f"{preset} int8 roofline", frac >= 0.85, text)
                else:
                    print(f"       {preset} fp8 roofline: {text}")
            pre = r["ttft"] / base["ttft"]
            text = f"TTFT {r['ttft']:.3f} s = {pre:.3f}x fp16's {base['ttft']:.3f} s (bar <= 1.0x)"
            if w == "int8":
                bar(f"{preset} int8 prefill", pre <= 1.0, text)
            else:
                print(f"       {preset} fp8 prefill: {text}")
    if g8:
        print(f"       FP8 tensor-core GEMMs, {g8['preset']} {g8['tokens']} tokens, all layers: "
              f"{g8['fp8_s'] * 1e3:.0f} ms ({g8['fp8_with_casts_s'] * 1e3:.0f} ms with the "
              f"activation casts of W8A8) vs fp16 {g8['fp16_s'] * 1e3:.0f} ms: "
              f"{g8['fp16_s'] / g8['fp8_with_casts_s']:.2f}x (not used: W8A16 keeps 16-bit activations)")
    print(f"quant bars: {'all met' if missed == 0 else f'{missed} missed'}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
