#!/usr/bin/env python3
"""Parity of the ref engine's CUDA backend with Hugging Face transformers, and
tensor-parallel identity. Runs on a GPU machine (gpu_check.sh calls it).

usage: parity.py LIBDIR LMDRIVE_BIN WORKDIR REPORT.json

Checks, each printed as one line and stored in REPORT.json:
  hf      tiny and tiny-untied checkpoints written by `lmdrive model init`
          (fp32 files), run in fp16 and bf16 by both engines: the 32 greedy
          tokens must be identical and max|logit diff| / max|logit| < 2e-2
          (logits of the 32 positions, same input for both engines). Tokens
          that part where transformers' own margin between its token and
          ours is at most one rounding step of the dtype at that logit (a
          tie: either engine's rounding may pick either) are reported as
          "tie", not as a failure; the logits check still applies in full.
  spec    random:<preset> weights generated on the GPU equal the checkpoint's
          (identical logits).
  path    other code paths give the same tokens: the greedy choice on the
          host instead of the GPU (and the same logprobs), and every other
          switch of options.h (SWITCHES; LMDREF_CUDA_AR=nccl under tp).
  attn    the Hopper prefill attention (wgmma) against the mma.sync kernel
          on qwen2.5-1.5b's shapes (128-dim heads): logits within 2e-2.
  tp      greedy tokens with tp=2 equal tp=1 (tiny: 32 steps; qwen2.5-1.5b
          random weights: 64 steps).
  quant   weight-only int8 (and fp8 on sm_90): the engine quantizing the
          tiny/tiny-untied checkpoints at load against transformers running
          the dequantized weights (quant_ref.py: int8 values × scales, written
          as an fp32 checkpoint so that fp16 and bf16 round them once, as the
          engine does): same greedy tokens, relative error < 2e-2, also with a
          quantized lm_head (tiny-untied); the GPU quantizer equals the numpy
          reference exactly (the quantized engine's prefill logits are
          bit-identical to the 16-bit engine's on the dequantized checkpoint);
          random:<preset> quantized on the GPU = the checkpoint quantized;
          tp=2 = tp=1 and the cuBLAS decode = the quantized matrix-vector one;
          the quantized kernels with the RMSNorm and residual add apart
          (LMDREF_CUDA_GEMV=warp) = fused, bit for bit. Before all of these,
          quant_check.py probes synthetic models matrix by matrix (bytes,
          scales, the prefill's dequantized scratch, every decode kernel form
          against numpy) and prints the first mismatch with its row and column.
Transformers runs in a child process so that PyTorch's CUDA libraries and the
engine's never share a process.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # quant_ref.py

TOL = 2e-2
STEPS = 32
# The switches (native/ref/cuda/options.h) whose other value runs another
# code path on one GPU; each must give the default path's greedy tokens, and
# those marked exact the same logprobs bit for bit (the same arithmetic in
# other kernels or another launch order).
SWITCHES = [("LMDREF_CUDA_GRAPH=0", True), ("LMDREF_CUDA_DECODE=cublas", False),
            ("LMDREF_CUDA_PDL=0", True), ("LMDREF_CUDA_GEMV=stream", True),
            ("LMDREF_CUDA_COMBINE=merged", True), ("LMDREF_CUDA_AHEAD=0", True),
            ("LMDREF_CUDA_PREFILL_ATTN=mma", False)]
# Alternatives whose kernels failed gpu_check.sh's kernel check: not run,
# recorded as failed (LMDREF_CHECK_SKIP, space-separated NAME=value).
SKIP = set(os.environ.get("LMDREF_CHECK_SKIP", "").split())


# Significand bits after the leading one: a value x in [2^e, 2^(e+1)) is
# stored to a step of 2^(e - bits).
MANTISSA_BITS = {"fp16": 10, "bf16": 7}


def rounding_step(x, dtype):
    """One rounding step (ulp) of dtype at the magnitude of x."""
    import math
    if x == 0 or not math.isfinite(x):
        return 0.0
    return 2.0 ** (math.floor(math.log2(abs(x))) - MANTISSA_BITS[dtype])


class switched:
    """Sets one LMDREF_CUDA_* switch for the engines created inside, then
    puts back what the environment had (gpu_check.sh may have set it)."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __enter__(self):
        self.saved = os.environ.get(self.name)
        os.environ[self.name] = self.value

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.saved


def prompt_ids(n, vocab, seed):
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(0, vocab, size=n)]


def hf_worker(job_file, out_dir):
    import torch
    import transformers
    job = json.load(open(job_file))
    models = {}
    for i, case in enumerate(job["cases"]):
        key = (case["dir"], case["dtype"])
        if key not in models:
            models.clear()
            dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[case["dtype"]]
            m = transformers.AutoModelForCausalLM.from_pretrained(
                case["dir"], dtype=dt, attn_implementation="sdpa").to("cuda").eval()
            m.generation_config.eos_token_id = None  # ignore_eos, as the engine runs
            models[key] = m
        m = models[key]
        prompt = case["prompt"]
        n = case["steps"]
        with torch.no_grad():
            ids = torch.tensor([prompt], device="cuda")
            g = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                           do_sample=False, output_logits=True,
                           return_dict_in_generate=True, pad_token_id=0)
            new = g.sequences[0, len(prompt):].tolist()
            step = torch.stack([x[0] for x in g.logits]).float()
            lp = torch.log_softmax(step, -1)[torch.arange(n), torch.tensor(new)].cpu().numpy()
            full = torch.tensor([prompt + new[:-1]], device="cuda")
            logits = m(full).logits[0, -n:].float().cpu().numpy()
        np.save(os.path.join(out_dir, f"logits{i}.npy"), logits)
        np.save(os.path.join(out_dir, f"step{i}.npy"), step.cpu().numpy())
        json.dump({"tokens": new, "logprobs": [float(x) for x in lp]},
                  open(os.path.join(out_dir, f"case{i}.json"), "w"))
    json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name(0)}, open(os.path.join(out_dir, "env.json"), "w"))


def quant_extra(lib, cases, ours_tp1, hf_dir, vocab, ngpu, record):
    """The quantized engine beyond transformers: exact against the numpy
    quantizer, random weights = checkpoint, other code paths, tp=2."""
    for c in cases:
        if not c.get("weights") or c["lm_head"] or len(c["prompt"]) != 37:
            continue
        fmt, dt, p = c["weights"], c["dtype"], c["preset"]
        hf = json.load(open(os.path.join(hf_dir, f"case{cases.index(c)}.json")))
        seq = c["prompt"] + hf["tokens"][:-1]
        ids_q, got_q = ours_tp1[(p, dt, 37, fmt, False)][:2]
        # Prefill dequantizes to the 16-bit type and runs cuBLAS: bit-identical
        # to the 16-bit engine on the dequantized checkpoint iff the GPU
        # quantizer made the numpy reference's bytes and scales.
        plain = lib.logits({"model": c["dir"], "device": "cuda", "dtype": dt}, seq, c["steps"], vocab)
        diff = float(np.abs(got_q - plain).max())
        record("quant", f"{fmt} GPU quantizer = numpy reference: {p} {dt}", diff == 0.0,
               max_abs_diff=diff)
        cfg = {"model": f"random:{p}", "seed": 1, "device": "cuda", "dtype": dt, "weights": fmt}
        got = lib.logits(cfg, seq, c["steps"], vocab)
        diff = float(np.abs(got - got_q).max())
        record("quant", f"{fmt} random:{p} seed=1 {dt} = its checkpoint", diff == 0.0,
               max_abs_diff=diff)
        if dt != "fp16":
            continue
        engine_cfg = {"model": c["engine_dir"], "device": "cuda", "dtype": dt, "weights": fmt}
        decode_switch = switched("LMDREF_CUDA_DECODE", "cublas")
        decode_switch.__enter__()
        e = lib.engine(engine_cfg)
        ids, _, _ = e.greedy(c["prompt"], c["steps"])
        e.close()
        decode_switch.__exit__()
        record("quant", f"{fmt} cublas decode = quantized gemv: {p} {dt}", ids == ids_q,
               same_tokens=ids == ids_q)
        # The quantized kernels with the RMSNorm and residual add in kernels
        # of their own (the tensor-parallel path's form) = fused: same bits.
        os.environ["LMDREF_CUDA_GEMV"] = "warp"
        e = lib.engine(engine_cfg)
        ids, lps, _ = e.greedy(c["prompt"], c["steps"])
        e.close()
        del os.environ["LMDREF_CUDA_GEMV"]
        lps_q = ours_tp1[(p, dt, 37, fmt, False)][2]
        lp = float(np.abs(np.array(lps) - np.array(lps_q)).max())
        record("quant", f"{fmt} GEMV=warp (norm, residual apart) = fused: {p} {dt}",
               ids == ids_q and lp == 0.0, same_tokens=ids == ids_q, logprob_diff=lp)
        if ngpu >= 2 and p == "tiny-untied":  # tiny's 176/2 MLP rows are not whole 16-byte rows
            e = lib.engine({**engine_cfg, "tp": 2})
            ids, _, _ = e.greedy(c["prompt"], c["steps"])
            e.close()
            record("quant", f"{fmt} tp2=tp1 {p} {dt} x{c['steps']}", ids == ids_q,
                   same_tokens=ids == ids_q)
    if ngpu >= 2:
        prompt = prompt_ids(300, 151936, 7)
        out = {}
        for tp in [1, 2]:
            e = lib.engine({"model": "random:qwen2.5-1.5b", "seed": 1, "device": "cuda",
                            "dtype": "fp16", "weights": "int8", "tp": tp})
            out[tp], _, _ = e.greedy(prompt, 64)
            e.close()
        first = next((k for k, (a, b) in enumerate(zip(out[1], out[2])) if a != b), -1)
        record("quant", "int8 tp2=tp1 random:qwen2.5-1.5b fp16 300 x64", out[1] == out[2],
               first_diff=first, distinct_tokens=len(set(out[1])))


def main():
    if sys.argv[1] == "--hf-worker":
        hf_worker(sys.argv[2], sys.argv[3])
        return
    libdir, lmdrive, work, report_path = sys.argv[1:5]
    import lmdabi
    lib = lmdabi.Library(os.path.join(libdir, "liblmdrive_ref.so"))
    os.makedirs(work, exist_ok=True)
    results = []

    def record(kind, name, ok, **kw):
        results.append({"check": kind, "case": name, "ok": bool(ok), **kw})
        extra = " ".join(f"{k}={v:.3e}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in kw.items() if k not in ("tokens", "hf_tokens"))
        word = "FAIL" if not ok else ("tie " if kw.get("tie") else "ok  ")
        print(f"{word} {kind:5s} {name:40s} {extra}", flush=True)

    presets = ["tiny", "tiny-untied"]
    dirs = {}
    for p in presets:
        d = os.path.join(work, p)
        if not os.path.exists(os.path.join(d, "config.json")):
            subprocess.run([lmdrive, "model", "init", "--preset", p, "--seed", "1", "--out", d],
                           check=True)
        dirs[p] = d
    vocab = 151936

    cases = []
    for p in presets:
        for dt in ["fp16", "bf16"]:
            for n in [37, 700]:
                cases.append({"preset": p, "dir": dirs[p], "dtype": dt,
                              "prompt": prompt_ids(n, vocab, n), "steps": STEPS})
    # Quantized weights: the engine loads the original checkpoint ("engine_dir")
    # and quantizes it; transformers runs the dequantized one ("dir").
    # LMDREF_PARITY_QUANT=0 leaves them out (gpu_check.sh does unless its
    # quant step runs too, to keep the issue-17 run within one device call).
    import quant_ref
    formats = ["int8"] if os.environ.get("LMDREF_PARITY_QUANT", "1") != "0" else []
    caps = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.split()
    if not formats:
        print("quantized parity left out (LMDREF_PARITY_QUANT=0)", flush=True)
    elif caps and min(float(c) for c in caps) >= 9.0:
        formats.append("fp8")
    else:
        print(f"fp8 parity skipped: compute capability {caps} (fp8 needs sm_90)", flush=True)
    for fmt in formats:
        for p in presets:
            for head in ([False, True] if p == "tiny-untied" else [False]):
                deq = os.path.join(work, f"{p}-{fmt}{'-head' if head else ''}-dequantized")
                quant_ref.write_dequantized(dirs[p], deq, fmt, lm_head=head, dtype=np.float32)
                for dt in ["fp16", "bf16"]:
                    for n in ([37, 700] if not head else [37]):
                        cases.append({"preset": p, "dir": deq, "engine_dir": dirs[p], "dtype": dt,
                                      "weights": fmt, "lm_head": head,
                                      "prompt": prompt_ids(n, vocab, n), "steps": STEPS})
    if formats:
        # The quantized weights matrix by matrix first (quant_check.py): bytes,
        # scales, the prefill's scratch and each decode kernel against numpy,
        # so that a difference is located before the checks below see it.
        import quant_check
        quant_check.run(os.path.join(libdir, "liblmdrive_ref_cuda.so"), formats, record)
    hf_dir = tempfile.mkdtemp(dir=work)
    job = os.path.join(hf_dir, "job.json")
    json.dump({"cases": cases}, open(job, "w"))
    subprocess.run([sys.executable, os.path.abspath(__file__), "--hf-worker", job, hf_dir],
                   check=True)
    env = json.load(open(os.path.join(hf_dir, "env.json")))
    print(f"transformers {env['transformers']}, torch {env['torch']}, {env['gpu']}", flush=True)

    ours_tp1 = {}
    for i, c in enumerate(cases):
        hf = json.load(open(os.path.join(hf_dir, f"case{i}.json")))
        hf_logits = np.load(os.path.join(hf_dir, f"logits{i}.npy"))
        cfg = {"model": c.get("engine_dir", c["dir"]), "device": "cuda", "dtype": c["dtype"]}
        if c.get("weights"):
            cfg["weights"] = c["weights"]
            cfg["quantize_lm_head"] = c["lm_head"]
        e = lib.engine(cfg)
        ids, lps, res = e.greedy(c["prompt"], c["steps"])
        e.close()
        seq = c["prompt"] + hf["tokens"][:-1]
        got = lib.logits(cfg, seq, c["steps"], vocab)
        rel = float(np.abs(got - hf_logits).max() / np.abs(hf_logits).max())
        same = ids == hf["tokens"]
        first_diff = next((k for k, (a, b) in enumerate(zip(ids, hf["tokens"])) if a != b), -1)
        upto = len(ids) if first_diff < 0 else first_diff
        lp_diff = float(np.abs(np.array(lps[:upto]) - np.array(hf["logprobs"][:upto])).max()) \
            if upto else float("nan")
        name = f"{c['preset']} {c['dtype']} prompt={len(c['prompt'])}"
        kind = "hf"
        if c.get("weights"):
            kind = "quant"
            name = f"{c['weights']}{'+lm_head' if c['lm_head'] else ''} vs hf dequantized: " + name
        extra = {}
        tie = False
        if first_diff >= 0:
            # Where the tokens part: how far apart transformers itself had the
            # two, against one rounding step of the dtype at that logit.
            step = np.load(os.path.join(hf_dir, f"step{i}.npy"))[first_diff]
            top = float(step[hf["tokens"][first_diff]])
            margin = top - float(step[ids[first_diff]])
            ulp = rounding_step(top, c["dtype"])
            tie = 0 <= margin <= ulp
            extra["hf_margin_at_diff"] = margin
            extra["hf_logit_at_diff"] = top
            extra["dtype_step_at_diff"] = ulp
            extra["tie"] = tie
        record(kind, name, (same or tie) and rel < TOL, rel_err=rel, same_tokens=same,
               first_diff=first_diff, decode_logprob_diff=lp_diff, **extra,
               device_prefill_s=res["device_prefill_s"], tokens=ids, hf_tokens=hf["tokens"])
        ours_tp1[(c["preset"], c["dtype"], len(c["prompt"]), c.get("weights", ""),
                  c.get("lm_head", False))] = (ids, got, lps)

    # random:<preset> generated on the GPU = the checkpoint written from the same spec.
    for p in presets:
        for dt in ["fp16", "bf16"]:
            c = next(c for c in cases if c["preset"] == p and c["dtype"] == dt)
            ids_ck, got_ck = ours_tp1[(p, dt, len(c["prompt"]), "", False)][:2]
            hf = json.load(open(os.path.join(hf_dir, f"case{cases.index(c)}.json")))
            cfg = {"model": f"random:{p}", "seed": 1, "device": "cuda", "dtype": dt}
            got = lib.logits(cfg, c["prompt"] + hf["tokens"][:-1], c["steps"], vocab)
            diff = float(np.abs(got - got_ck).max())
            record("spec", f"random:{p} seed=1 {dt}", diff == 0.0, max_abs_diff=diff)

    # The greedy choice made on the GPUs (default) = the host's choice from the
    # copied logits row (LMDREF_CUDA_CHOICE=host): same tokens, and logprobs
    # (the fp32 log-sum-exp on the device against the host's fp64 one) and
    # watched logprobs within 1e-4. Watched: ids on both sides of the tp=2
    # vocabulary split.
    watch = [0, 17, 75000, 151935]
    for c, tp in [(cases[0], 1), (cases[3], 1), (cases[0], 2)]:
        if tp > int(os.environ.get("LMDREF_CHECK_GPUS", "2")):
            continue
        got = {}
        for where in ["device", "host"]:
            if where == "host":
                choice_switch = switched("LMDREF_CUDA_CHOICE", "host")
                choice_switch.__enter__()
            e = lib.engine({"model": c["dir"], "device": "cuda", "dtype": c["dtype"], "tp": tp})
            got[where] = e.greedy(c["prompt"], c["steps"], watch)
            e.close()
            if where == "host":
                choice_switch.__exit__()
        (di, dl, dr), (hi, hl, hr) = got["device"], got["host"]
        lp = float(np.abs(np.array(dl) - np.array(hl)).max())
        wl = float(np.abs(np.array(dr["watch"]) - np.array(hr["watch"])).max())
        record("path", f"device choice {c['preset']} {c['dtype']} {len(c['prompt'])} tp={tp}",
               di == hi and lp < 1e-4 and wl < 1e-4, same_tokens=di == hi, logprob_diff=lp,
               watch_logprob_diff=wl)

    # Every other switch of the CUDA backend (options.h; CHOICE is checked
    # above, AR with tp=2 below) gives the default path's tokens.
    for switch, exact in SWITCHES:
        name, value = switch.split("=")
        if switch in SKIP:
            record("path", f"{switch}: not run, its kernel check failed", False)
            continue
        sw = switched(name, value)
        sw.__enter__()
        for c in [cases[1], cases[7]]:
            e = lib.engine({"model": c["dir"], "device": "cuda", "dtype": c["dtype"]})
            ids, lps, _ = e.greedy(c["prompt"], c["steps"])
            e.close()
            ref_ids, _, ref_lps = ours_tp1[(c["preset"], c["dtype"], len(c["prompt"]), "", False)]
            lp = float(np.abs(np.array(lps) - np.array(ref_lps)).max())
            ok = ids == ref_ids and (lp == 0.0 or not exact)
            record("path", f"{switch} {c['preset']} {c['dtype']} {len(c['prompt'])}", ok,
                   same_tokens=ids == ref_ids, logprob_diff=lp, exact=exact)
        sw.__exit__()

    # The Hopper prefill attention (128-dim heads only: the tiny presets'
    # heads are 16 wide) against the mma.sync kernel, on qwen2.5-1.5b's shapes
    # (12 query heads on 2 kv heads), 1000 tokens (not a multiple of a tile).
    for dt in ["fp16", "bf16"]:
        if "LMDREF_CUDA_PREFILL_ATTN=mma" in SKIP:
            record("attn", f"wgmma prefill {dt}: not run, its kernel check failed", False)
            continue
        prompt = prompt_ids(1000, vocab, 11)
        cfg = {"model": "random:qwen2.5-1.5b", "seed": 1, "device": "cuda", "dtype": dt}
        got = lib.logits(cfg, prompt, 4, vocab)  # the default: wgmma on sm_90
        with switched("LMDREF_CUDA_PREFILL_ATTN", "mma"):
            ref = lib.logits(cfg, prompt, 4, vocab)
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        same = bool((got.argmax(-1) == ref.argmax(-1)).all())
        record("attn", f"wgmma = mma prefill random:qwen2.5-1.5b {dt} 1000", rel < TOL and same,
               rel_err=rel, same_argmax=same)

    # Tensor parallelism: tp=2 greedy = tp=1 greedy.
    ngpu = int(os.environ.get("LMDREF_CHECK_GPUS", "2"))
    if ngpu >= 2:
        for c in [cases[0], cases[5]]:
            e = lib.engine({"model": c["dir"], "device": "cuda", "dtype": c["dtype"], "tp": 2})
            ids, _, _ = e.greedy(c["prompt"], c["steps"])
            info = e.info
            e.close()
            ref_ids = ours_tp1[(c["preset"], c["dtype"], len(c["prompt"]), "", False)][0]
            record("tp", f"tp2=tp1 {c['preset']} {c['dtype']} {len(c['prompt'])} x{c['steps']}",
                   ids == ref_ids, same_tokens=ids == ref_ids, tp_size=info["tp_size"])
            ar_switch = switched("LMDREF_CUDA_AR", "nccl")
            ar_switch.__enter__()
            e = lib.engine({"model": c["dir"], "device": "cuda", "dtype": c["dtype"], "tp": 2})
            ids, _, _ = e.greedy(c["prompt"], c["steps"])
            e.close()
            ar_switch.__exit__()
            record("tp", f"LMDREF_CUDA_AR=nccl tp2=tp1 {c['preset']} {c['dtype']} "
                   f"{len(c['prompt'])}", ids == ref_ids, same_tokens=ids == ref_ids)
        for dt in ["fp16", "bf16"]:
            prompt = prompt_ids(300, 151936, 7)
            out = {}
            for tp in [1, 2]:
                e = lib.engine({"model": "random:qwen2.5-1.5b", "seed": 1, "device": "cuda",
                                "dtype": dt, "tp": tp})
                out[tp], _, _ = e.greedy(prompt, 64)
                e.close()
            first = next((k for k, (a, b) in enumerate(zip(out[1], out[2])) if a != b), -1)
            record("tp", f"tp2=tp1 random:qwen2.5-1.5b {dt} 300 x64", out[1] == out[2],
                   first_diff=first, distinct_tokens=len(set(out[1])))

    quant_extra(lib, cases, ours_tp1, hf_dir, vocab, ngpu, record)

    report = {"tolerance": TOL, "steps": STEPS, "env": env, "results": results}
    json.dump(report, open(report_path, "w"), indent=1)
    bad = [r for r in results if not r["ok"]]
    print(f"parity: {len(results) - len(bad)}/{len(results)} checks passed", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
