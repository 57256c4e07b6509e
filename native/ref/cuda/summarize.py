#!/usr/bin/env python3
"""Prints the table of a gpu_check.sh run (markdown) from its output folder:
parity results, and speed against the roofline and the bars of issue 5.

roofline (decode) = copy bandwidth / bytes each GPU must read per token, where
bytes = layer weights + lm_head (the rows of this GPU) + the KV cache at the
mean context of the run (prompt + new/2).
"""
import glob
import json
import os
import sys

SHAPES = {  # hidden, intermediate, layers, heads, kv_heads, vocab
    "qwen2.5-14b": (5120, 13824, 48, 40, 8, 152064),
    "qwen2.5-32b": (5120, 27648, 64, 40, 8, 152064),
    "qwen2.5-72b": (8192, 29568, 80, 64, 8, 152064),
}


def decode_bytes(preset, context, tp):
    h, inter, layers, heads, kv, vocab = SHAPES[preset]
    hd = h // heads
    q, kvd = heads * hd, kv * hd
    layer = h * (q + 2 * kvd) + (q + 2 * kvd) + q * h + 3 * h * inter + 2 * h
    weights = (layers * layer + vocab * h + h) * 2
    kv_bytes = layers * 2 * kvd * 2 * context
    return (weights + kv_bytes) / tp, weights / tp, kv_bytes / tp


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def main():
    d = sys.argv[1]
    out = []
    p = os.path.join(d, "parity.json")
    if os.path.exists(p):
        rep = json.load(open(p))
        out.append("| parity check | case | result | figures |")
        out.append("|---|---|---|---|")
        for r in rep["results"]:
            figs = ", ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in r.items()
                             if k not in ("check", "case", "ok", "tokens", "hf_tokens"))
            out.append(f"| {r['check']} | {r['case']} | {'ok' if r['ok'] else 'FAIL'} | {figs} |")
        out.append("")
    torch_rows = {}
    tp = os.path.join(d, "torch.jsonl")
    if os.path.exists(tp):
        for line in open(tp):
            line = line.strip()
            if line.startswith("{"):
                j = json.loads(line)
                key = j["measure"] + (f":{j.get('tokens', '')}" if j["measure"] == "gemm" else "")
                torch_rows[key] = j
    bw = torch_rows.get("copybw", {}).get("bytes_per_s")
    if bw:
        out.append(f"copy bandwidth (read + write): {bw / 1e12:.3f} TB/s on {torch_rows['copybw']['gpu']}")
    for k in ("gemm:10000", "gemm:20000"):
        if k in torch_rows:
            g = torch_rows[k]
            out.append(f"prefill GEMMs alone, {g['preset']} {g['tokens']} tokens: "
                       f"{g['median_s'] * 1e3:.0f} ms ({g['tflops']:.0f} TFLOP/s)")
    hf = torch_rows.get("hf")
    if hf:
        out.append(f"transformers {hf['transformers']}: TTFT {hf['ttft_s']:.3f} s, decode "
                   f"{hf['decode_tok_s']:.2f} tok/s ({hf['prompt_tokens']} → {hf['new_tokens']})")
    out.append("")
    out.append("| run | TTFT s (device) | decode tok/s (device) | roofline tok/s | % roofline |")
    out.append("|---|---|---|---|---|")
    results, outputs, prefill = {}, {}, {}
    groups = []
    for f in sorted(glob.glob(os.path.join(d, "run-*.jsonl"))):
        recs = [json.loads(l) for l in open(f) if l.strip()]
        base = os.path.basename(f)[4:-6]
        if base.startswith(("q14-", "q32-")):
            continue  # the quant step's runs: quant_bars.py reports them
        if base == "ab":
            for label in dict.fromkeys(r["label"] for r in recs):
                groups.append((label, [r for r in recs if r["label"] == label]))
        else:
            groups.append((base, recs))
    for name, recs in groups:
        recs = [r for r in recs if r.get("status") == "ok" and r.get("metrics")]
        if not recs:
            out.append(f"| {name} | failed | | | |")
            continue
        m = [r["metrics"] for r in recs]
        if recs[0].get("output"):
            outputs[name] = recs[0]["output"]["ids"]
        preset = recs[0]["workload"]["model"].split(":")[-1]
        tp = recs[0]["engine"].get("tp_size", 1) or 1
        prompt = recs[0]["prompt"].get("tokens", 0)
        new = m[0]["output_tokens"]
        ttft = median([x["ttft_s"] for x in m])
        dec = median([x["decode_tok_s"] for x in m])
        dpre = median([x.get("device_prefill_s") or 0 for x in m])
        ddec = median([(new - 1) / x["device_decode_s"] for x in m if x.get("device_decode_s")])
        roof = ""
        pct = ""
        if bw and preset in SHAPES:
            b, _, _ = decode_bytes(preset, prompt + new / 2, tp)
            r = bw / b
            roof = f"{r:.1f}"
            pct = f"{100 * dec / r:.1f}%"
        results[name] = dec
        prefill[name] = (ttft, dpre)
        out.append(f"| {name} ({preset}, tp={tp}, {prompt}→{new}) | {ttft:.3f} ({dpre:.3f}) | "
                   f"{dec:.2f} ({ddec:.2f}) | {roof} | {pct} |")
    out.append("")
    if "14b" in results and "14b-tp2" in results:
        out.append(f"TP=2 / TP=1 decode speed-up, 14B: {results['14b-tp2'] / results['14b']:.2f}x "
                   f"(bar >= 1.7x)")
    gemm10 = torch_rows.get("gemm:10000", {}).get("median_s")
    if "14b" in prefill and gemm10:
        ttft = prefill["14b"][0]
        out.append(f"prefill, 14B 10k: TTFT {ttft:.3f} s = {ttft / gemm10:.2f}x the GEMMs alone "
                   f"(bar <= 1.2x)" + (f"; transformers {hf['ttft_s']:.3f} s (bar: faster)" if hf else ""))
    if "14b" in prefill and "14b-20k" in prefill:
        # GEMMs and element-wise passes grow linearly with the prompt, causal
        # attention quadratically: T(20k) - 2 T(10k) = 2 A(10k).
        a10 = (prefill["14b-20k"][1] - 2 * prefill["14b"][1]) / 2
        h, inter, layers, heads, kv, vocab = SHAPES["qwen2.5-14b"]
        flop = 2 * 10000 ** 2 * (h // heads) * heads * layers
        out.append(f"prefill attention at 10k (from the 10k and 20k device prefill times): "
                   f"{a10 * 1e3:.0f} ms, {flop / a10 / 1e12:.0f} TFLOP/s; the rest "
                   f"{(prefill['14b'][1] - a10) * 1e3:.0f} ms")
    if "14b" in outputs and "14b-tp2" in outputs:
        a, b = outputs["14b"], outputs["14b-tp2"]
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), -1)
        out.append(f"14B greedy tokens, TP=2 vs TP=1: identical for "
                   f"{len(a) if first < 0 else first} of {len(a)} steps "
                   f"({len(set(a))} distinct tokens in the TP=1 output)")
    print("\n".join(out))


if __name__ == "__main__":
    main()
