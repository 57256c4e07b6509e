#!/usr/bin/env python3
"""The batch speed bars of the ref engine (gpu_check.sh step batch14), from
the same device run's records:

  run-batch14.jsonl  `lmdrive run --batch B` of random:qwen2.5-14b fp16,
                     1k-token prompts -> 256 new tokens, B = 1, 8, 32, 64
  floors.jsonl       copy bandwidth and the prefill GEMM rate (step floors),
  or quant-torch.jsonl  the quant step's copy bandwidth and its fp16 baseline
                     of the 14B prefill GEMMs (gemm8's fp16_s)

For each batch size it prints the aggregate decode rate (tokens after every
request's first token, over the time from the last first token to the last
token: every sequence decoding) and the step roofline: the larger of
  bytes / copy bandwidth   bytes = the weights a decode step reads (layers
                           and lm_head, fp16) + the KV cache of every
                           sequence at its mean context (prompt + new/2)
  FLOPs / GEMM rate        2 · B · (weights) + attention over those contexts
Then the two bars of batch 32: decode rate >= 75% of its roofline, and >= 20x
the batch-1 decode rate, each "met" or "MISSED" with its ratio.

usage: batch_bars.py OUT-DIR
"""
import json
import os
import sys

SHAPE = (5120, 13824, 48, 40, 8, 152064)  # qwen2.5-14b: hidden, intermediate, layers, heads, kv heads, vocab
PROMPT, NEW = 1024, 256


def step_cost(batch):
    h, inter, layers, heads, kv, vocab = SHAPE
    hd = h // heads
    q, kvd = heads * hd, kv * hd
    params = layers * (h * (q + 2 * kvd) + (q + 2 * kvd) + q * h + 3 * h * inter + 2 * h) + vocab * h + h
    context = PROMPT + NEW / 2
    kv_bytes = batch * layers * 2 * kvd * 2 * context
    bytes_ = params * 2 + kv_bytes
    flops = 2 * batch * params + batch * layers * 4 * q * context
    return bytes_, flops


def prefill_flops(tokens):
    """FLOPs of the four projections of every layer for `tokens` rows (what
    bench_torch.py's gemm and gemm8 time)."""
    h, inter, layers, heads, kv, _ = SHAPE
    q, kvd = h, kv * (h // heads)
    return 2 * tokens * layers * (h * (q + 2 * kvd) + q * h + 3 * h * inter)


def main():
    d = sys.argv[1]
    bw = gemm = None
    for name in ("floors.jsonl", "torch.jsonl", "quant-torch.jsonl"):
        tp = os.path.join(d, name)
        if not os.path.exists(tp):
            continue
        for line in open(tp):
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if j["measure"] == "copybw":
                bw = bw or j["bytes_per_s"]
            if j["measure"] == "gemm":
                gemm = max(gemm or 0, j["tflops"] * 1e12)
            if j["measure"] == "gemm8" and j.get("preset") == "qwen2.5-14b":
                gemm = max(gemm or 0, prefill_flops(j["tokens"]) / j["fp16_s"])
    if not bw or not gemm:
        sys.exit("batch bars: run the floors or the quant step in the same device run "
                 "(copy bandwidth and GEMM rate)")
    rates = {}
    rp = os.path.join(d, "run-batch14.jsonl")
    for line in open(rp) if os.path.exists(rp) else []:
        r = json.loads(line)
        if r.get("kind") == "load" and r.get("summary"):
            b = r["workload"]["load"]["batch"]
            rates[b] = r["summary"].get("decode_tok_s", 0)
    if not rates:
        sys.exit("batch bars: no batch runs in run-batch14.jsonl")
    print(f"copy bandwidth {bw / 1e12:.2f} TB/s, GEMM rate {gemm / 1e12:.0f} TFLOP/s")
    print("| batch | decode tok/s | step roofline tok/s | bound | ratio |")
    print("|---|---|---|---|---|")
    roof = {}
    for b in sorted(rates):
        bytes_, flops = step_cost(b)
        t_mem, t_flop = bytes_ / bw, flops / gemm
        roof[b] = b / max(t_mem, t_flop)
        bound = "memory" if t_mem >= t_flop else "compute"
        print(f"| {b} | {rates[b]:.1f} | {roof[b]:.1f} | {bound} | {rates[b] / roof[b]:.1%} |")
    bars = [  # what, figure (None: its runs are missing), threshold, format, why missing
        ("batch-32 decode >= 75% of its step roofline",
         rates[32] / roof[32] if 32 in rates else None, 0.75, "{:.1%}", "no batch-32 run"),
        ("batch-32 decode >= 20x batch 1",
         rates[32] / rates[1] if 32 in rates and rates.get(1) else None, 20, "{:.1f}x",
         "no batch-1 or batch-32 run"),
    ]
    ok = True
    for what, x, bar, fmt, missing in bars:
        met = x is not None and x >= bar
        ok = ok and met
        print(f"bar: {what}: {'met' if met else 'MISSED'} ({fmt.format(x) if x is not None else missing})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
