#!/usr/bin/env python3
"""Prints the summary of a gpu_check.sh run (markdown) from its output folder:
the checks, the floors measured in the same run, each bar of issue 17 as met
or missed with its ratio, and the tables of runs, A/B switches and the CPU.

usage: summarize.py OUT-DIR

Definitions (docs/benchmarks.md):
  prefill floor  the prefill GEMMs alone, each projection in its fastest form
                 (bench_torch.py gemm), plus causal attention alone with the
                 fastest SDPA backend (bench_torch.py attn), on the same shapes
  roofline       copy bandwidth / the bytes each decode step must read: layer
                 weights, lm_head and the KV cache at the run's mean context
                 (prompt + new / 2)
  host gaps      TTFT (host) − device prefill (CUDA events); per decode token,
                 host time (1 / decode tok/s) − device time (events per step)
"""
import glob
import json
import os
import statistics
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
    return (weights + kv_bytes) / tp


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def jsonl(path):
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def verdict(ok):
    return "**met**" if ok else "**missed**"


def run_figures(recs):
    """Medians of a run's ok records: TTFT, device prefill, decode tok/s,
    device decode tok/s, host gaps (ms)."""
    # Load runs (batch14, load14) are per-request records: batch_bars.py and
    # lmdrive's own table report them.
    recs = [r for r in recs if r.get("status") == "ok" and r.get("metrics")
            and not r.get("workload", {}).get("load")]
    if not recs:
        return None
    m = [r["metrics"] for r in recs]
    new = m[0]["output_tokens"]
    f = {
        "preset": recs[0]["workload"]["model"].split(":")[-1],
        "tp": recs[0]["engine"].get("tp_size", 1) or 1,
        "prompt": recs[0]["prompt"].get("tokens", 0),
        "new": new,
        "n": len(recs),
        "ttft": median([x["ttft_s"] for x in m]),
        "dprefill": median([x.get("device_prefill_s") for x in m]),
        "decode": median([x["decode_tok_s"] for x in m]),
        "ddecode": median([(new - 1) / x["device_decode_s"] for x in m if x.get("device_decode_s")]),
        "gap_ttft_ms": median([(x["ttft_s"] - x["device_prefill_s"]) * 1e3 for x in m
                               if x.get("device_prefill_s")]),
        "gap_token_ms": median([(1 / x["decode_tok_s"] - x["device_decode_s"] / (new - 1)) * 1e3
                                for x in m if x.get("device_decode_s") and x.get("decode_tok_s")]),
        "ids": recs[0].get("output", {}).get("ids") if recs[0].get("output") else None,
    }
    return f


def main():
    d = sys.argv[1]
    out = []
    say = out.append

    # ---- checks
    say("## Checks\n")
    kpath = os.path.join(d, "kernels.json")
    kern = json.load(open(kpath)) if os.path.exists(kpath) else None
    if kern:
        bad = [r for r in kern["results"] if r["kind"] == "check" and not r["ok"]]
        say(f"- kernel check: {kern['checks'] - kern['failed']}/{kern['checks']} ok; Hopper prefill "
            f"attention: {kern['hopper_prefill_attention']}"
            + (" (every run after it used LMDREF_CUDA_PREFILL_ATTN=mma)"
               if kern["hopper_prefill_attention"] == "FAIL" else ""))
        for r in bad:
            say(f"  - FAIL {r['what']} {r['figures']}")
    ppath = os.path.join(d, "parity.json")
    if os.path.exists(ppath):
        rep = json.load(open(ppath))
        res = rep["results"]
        ties = [r for r in res if r.get("tie")]
        bad = [r for r in res if not r["ok"]]
        say(f"- parity: {len(res) - len(bad)}/{len(res)} ok, {len(ties)} tie(s) "
            f"({rep['env'].get('transformers')} / torch {rep['env'].get('torch')})")
        for r in ties:
            say(f"  - tie: {r['case']} parts at step {r['first_diff']}: transformers' margin "
                f"{r['hf_margin_at_diff']:.4g} at logit {r['hf_logit_at_diff']:.4g} "
                f"<= one {r['case'].split()[1]} step {r['dtype_step_at_diff']:.4g}")
        for r in bad:
            figs = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in r.items() if k not in ("check", "case", "ok", "tokens", "hf_tokens"))
            say(f"  - FAIL {r['check']} {r['case']}: {figs}")
    say("")

    # ---- floors
    floors = {}
    for j in jsonl(os.path.join(d, "floors.jsonl")):
        key = j["measure"] + (f":{j['tokens']}" if "tokens" in j else "")
        floors[key] = j
    ktimes = {r["what"]: r for r in (kern["results"] if kern else []) if r["kind"] == "time"}
    bw = floors.get("copybw", {}).get("bytes_per_s")
    if not bw:
        kc = next((r for w, r in ktimes.items() if w.startswith("copy bandwidth")), None)
        bw = kc["tb_per_s"] * 1e12 if kc else None
    say("## Floors (measured in this run)\n")
    if bw:
        gpu = floors.get("copybw", {}).get("gpu", "")
        say(f"- copy bandwidth (read + write, 2 GiB device to device): **{bw / 1e12:.3f} TB/s** {gpu}")
    pre_floor = {}
    for n in (10000, 20000):
        g, a = floors.get(f"gemm:{n}"), floors.get(f"attn:{n}")
        if g:
            forms = ", ".join(f"{k} {v['form']}" for k, v in g.get("per_layer", {}).items())
            say(f"- prefill GEMMs alone, 14B, {n} tokens, fastest form of each: **{g['median_s'] * 1e3:.0f} ms** "
                f"({g['tflops']:.0f} TFLOP/s; {forms})")
        if a:
            backs = ", ".join(f"{k} {v['ms']:.2f} ms" if "ms" in v else f"{k} failed"
                              for k, v in a["backends"].items())
            say(f"- attention alone, 14B, {n} tokens (48 layers), fastest SDPA backend **{a['backend']}**: "
                f"**{a['median_s'] * 1e3:.0f} ms** ({a['tflops']:.0f} TFLOP/s; per layer: {backs})")
        if g and a:
            pre_floor[n] = g["median_s"] + a["median_s"]
            say(f"- prefill floor at {n}: **{pre_floor[n] * 1e3:.0f} ms**")
    gv = floors.get("gemv")
    if gv and bw:
        say("- one-token matrix-vector through cuBLAS (F.linear, one row): " + ", ".join(
            f"{k} {v['tb_per_s']:.2f} TB/s" for k, v in gv["shapes"].items()))
    say("")

    # ---- engine kernels against the floors
    mv = [r for w, r in ktimes.items() if w.startswith("matrix-vector")]
    if mv or ktimes:
        say("## Kernels of the engine (kernel check, 14B shapes, fp16)\n")
        say("| kernel | figures |")
        say("|---|---|")
        for w, r in ktimes.items():
            if w.startswith("copy bandwidth"):
                continue
            figs = {k: v for k, v in r.items() if k not in ("kind", "what")}
            extra = ""
            if w.startswith("matrix-vector") and bw:
                b = figs["bytes"]
                extra = (f"warp {b / figs['warp_us'] / 1e6:.2f}, stream {b / figs['stream_us'] / 1e6:.2f}, "
                         f"stream+norm {b / figs['stream_norm_us'] / 1e6:.2f}, read floor "
                         f"{b / figs['read_us'] / 1e6:.2f} TB/s; warp = {b / figs['warp_us'] / 1e6 / (bw / 1e12):.0%}"
                         f" of copy bandwidth")
            elif w.startswith("decode attention"):
                b = figs["bytes"]
                extra = (f"separate combine {figs['separate_us']:.1f} µs ({b / figs['separate_us'] / 1e6:.2f} TB/s), "
                         f"merged {figs['merged_us']:.1f} µs ({b / figs['merged_us'] / 1e6:.2f} TB/s)")
            elif w.startswith("prefill attention"):
                n, L = figs["tokens"], figs["layers"]
                flop = 2.0 * n * n * 128 * 40
                extra = f"mma {figs['mma_ms'] * L:.0f} ms ({flop / figs['mma_ms'] / 1e9:.0f} TFLOP/s)"
                if "wgmma_ms" in figs:
                    extra += (f", wgmma {figs['wgmma_ms'] * L:.0f} ms ({flop / figs['wgmma_ms'] / 1e9:.0f} TFLOP/s) "
                              f"for {L} layers")
                a = floors.get(f"attn:{n}")
                if a:
                    best = min(figs.get("wgmma_ms", 1e9), figs["mma_ms"]) * L / 1e3
                    extra += f"; {best / a['median_s']:.2f}x the fastest SDPA"
            say(f"| {w} | {extra} |")
        say("")

    # ---- runs
    runs = {}
    for f in sorted(glob.glob(os.path.join(d, "run-*.jsonl"))):
        base = os.path.basename(f)[4:-6]
        if base == "ab" or base.startswith(("q14-", "q32-")):
            continue  # A/B below; the quant step's runs: quant_bars.py reports them
        recs = jsonl(f)
        fig = run_figures(recs)
        if fig:
            runs[base] = fig
    hf = (jsonl(os.path.join(d, "hf.jsonl")) or [None])[-1]
    hfs = (jsonl(os.path.join(d, "hfstatic.jsonl")) or [None])[-1]

    say("## Bars (issue 17)\n")
    say("| bar | figure | ratio | verdict |")
    say("|---|---|---|---|")
    for n, name in ((10000, "14b"), (20000, "14b-20k")):
        r = runs.get(name)
        if r and n in pre_floor:
            ratio = r["ttft"] / pre_floor[n]
            say(f"| prefill 14B {n // 1000}k: TTFT ≤ 1.1 × the floor | {r['ttft']:.3f} s vs floor "
                f"{pre_floor[n]:.3f} s | {ratio:.2f}x | {verdict(ratio <= 1.1)} |")
    r = runs.get("14b")
    for label, h in (("eager", hf), ("static cache + compiled", hfs)):
        if r and h:
            ratio = h["ttft_s"] / r["ttft"]
            say(f"| prefill 14B 10k ≥ 1.3 × faster than transformers ({label}) | {r['ttft']:.3f} s vs "
                f"{h['ttft_s']:.3f} s | {ratio:.2f}x | {verdict(ratio >= 1.3)} |")
    for name, bar in (("14b", 0.90), ("32b", 0.92)):
        r = runs.get(name)
        if r and bw and r["preset"] in SHAPES:
            roof = bw / decode_bytes(r["preset"], r["prompt"] + r["new"] / 2, r["tp"])
            ratio = r["decode"] / roof
            say(f"| decode {r['preset']} {r['prompt'] // 1000}k→{r['new']} ≥ {bar:.0%} of the roofline | "
                f"{r['decode']:.2f} tok/s (device {r['ddecode']:.2f}) vs {roof:.1f} | {ratio:.1%} | "
                f"{verdict(ratio >= bar)} |")
    for name in ("14b", "32b"):
        r = runs.get(name)
        if r and r["gap_ttft_ms"] is not None:
            say(f"| host TTFT − device prefill ≤ 0.1 ms ({r['preset']}) | {r['gap_ttft_ms']:.3f} ms | | "
                f"{verdict(r['gap_ttft_ms'] <= 0.1)} |")
        if r and r["gap_token_ms"] is not None:
            say(f"| host − device per decode token ≤ 0.02 ms ({r['preset']}) | {r['gap_token_ms']:.4f} ms | | "
                f"{verdict(r['gap_token_ms'] <= 0.02)} |")
    if mv and bw:
        # The engine's default form (warp) on every shape, the stream form beside it.
        def ratio(r, key):
            return r["bytes"] / r[key] / 1e6 / (bw / 1e12)
        worst = min((ratio(r, "warp_us"), r["what"]) for r in mv)
        worst_s = min(ratio(r, "stream_us") for r in mv)
        say(f"| matrix-vector at copy bandwidth on every 14B shape (default warp form) | slowest: "
            f"{worst[1]}; the stream form's slowest: {worst_s:.0%} | {worst[0]:.0%} | "
            f"{verdict(worst[0] >= 0.95)} (bar read as ≥ 95 %) |")
    cpu = {}
    for f in glob.glob(os.path.join(d, "cpu-*.jsonl")):
        if f.endswith("cpu-omp.jsonl"):
            continue  # the omp step's OpenMP/std::thread comparison (lmdrive report prints it)
        fig = run_figures(jsonl(f))
        if fig:
            cpu[os.path.basename(f)[4:-6]] = fig
    if "2cpus-default" in cpu and "2cpus-1thread" in cpu:
        ratio = cpu["2cpus-default"]["decode"] / cpu["2cpus-1thread"]["decode"]
        say(f"| CPU default ≥ one thread (random:tiny 2048→256, 2 CPUs, decode) | "
            f"{cpu['2cpus-default']['decode']:.0f} vs {cpu['2cpus-1thread']['decode']:.0f} tok/s | "
            f"{ratio:.2f}x | {verdict(ratio >= 0.97)} (3 % noise allowed) |")
    say("")

    # ---- runs table
    say("## Runs of the ref engine\n")
    say("| run | TTFT s (device) | decode tok/s (device) | roofline tok/s | % roofline | host gaps: TTFT ms, per token ms |")
    say("|---|---|---|---|---|---|")
    for name, r in runs.items():
        roof = pct = ""
        if bw and r["preset"] in SHAPES:
            rf = bw / decode_bytes(r["preset"], r["prompt"] + r["new"] / 2, r["tp"])
            roof, pct = f"{rf:.1f}", f"{100 * r['decode'] / rf:.1f}%"
        gaps = (f"{r['gap_ttft_ms']:.3f}, {r['gap_token_ms']:.4f}" if r["gap_token_ms"] is not None else "")
        say(f"| {name} ({r['preset']}, tp={r['tp']}, {r['prompt']}→{r['new']}, {r['n']} repeats) | "
            f"{r['ttft']:.3f} ({r['dprefill'] or 0:.3f}) | {r['decode']:.2f} ({r['ddecode'] or 0:.2f}) | "
            f"{roof} | {pct} | {gaps} |")
    for label, h in (("transformers eager", hf), ("transformers static cache + compiled", hfs)):
        if h:
            say(f"| {label} ({h['preset']}, {h['prompt_tokens']}→{h['new_tokens']}) | {h['ttft_s']:.3f} | "
                f"{h['decode_tok_s']:.2f} | | | |")
    if "14b" in runs and "14b-20k" in runs and runs["14b"]["dprefill"] and runs["14b-20k"]["dprefill"]:
        a10 = (runs["14b-20k"]["dprefill"] - 2 * runs["14b"]["dprefill"]) / 2
        say(f"\nattention's share of the 10k prefill (from the 10k and 20k device prefills, "
            f"T(20k) − 2 T(10k) = 2 A(10k)): {a10 * 1e3:.0f} ms; the rest "
            f"{(runs['14b']['dprefill'] - a10) * 1e3:.0f} ms")
    if "14b" in runs and "14b-tp2" in runs:
        say(f"\nTP=2 / TP=1 decode, 14B: {runs['14b-tp2']['decode'] / runs['14b']['decode']:.2f}x")
    say("")

    # ---- A/B
    ab = jsonl(os.path.join(d, "run-ab.jsonl"))
    if ab:
        labels = list(dict.fromkeys(r["label"] for r in ab))
        figs = {lab: run_figures([r for r in ab if r["label"] == lab]) for lab in labels}
        base = figs.get("default")
        say("## What each switch buys (14B, 10k → 100, the switch's other value against the default)\n")
        say("| run | TTFT s (device) | decode tok/s (device) | vs default: TTFT, decode |")
        say("|---|---|---|---|")
        for lab, f in figs.items():
            if not f:
                say(f"| {lab} | failed | | |")
                continue
            rel = ""
            if base and lab != "default":
                rel = f"{f['ttft'] / base['ttft']:.3f}x, {f['decode'] / base['decode']:.3f}x"
            say(f"| {lab} | {f['ttft']:.3f} ({f['dprefill'] or 0:.3f}) | {f['decode']:.2f} "
                f"({f['ddecode'] or 0:.2f}) | {rel} |")
        say("")

    # ---- CPU
    if cpu:
        say("## CPU backend (random:tiny 2048 → 256, `lmdrive run`, interleaved)\n")
        say("| CPUs, threads | TTFT s | decode tok/s | repeats |")
        say("|---|---|---|---|")
        for k in ("2cpus-1thread", "2cpus-default", "all-1thread", "all-default"):
            if k in cpu:
                f = cpu[k]
                say(f"| {k} | {f['ttft']:.4f} | {f['decode']:.1f} | {f['n']} |")
        say("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
