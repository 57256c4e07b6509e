#!/usr/bin/env python3
"""Batched generation on the GPU gives each request what it gets alone.
Runs on a GPU machine (gpu_check.sh step batchparity).

usage: batch_parity.py LIBDIR REPORT.json

For each model (random:tiny, random:tiny-untied, random:qwen2.5-1.5b) in fp16
and bf16, eight prompts of different lengths (17 to 300 tokens) run alone,
then together:
  batch   all eight started in one step (start_batch)
  join    seven started together, the eighth once they have 8 tokens each:
          it joins the running batch, its prompt prefilled in chunks of
          step_tokens=64 between their decode steps
and the greedy tokens of every request must be identical to its tokens alone,
and its chosen-token and watched logprobs within the fp16/bf16 bar of
parity.py: max |difference| / max(1, max |logprob|) < 2e-2.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lmdabi  # noqa: E402

TOL = 2e-2
STEPS = 32
LENGTHS = [17, 300, 64, 1, 129, 40, 255, 90]
WATCH = [11, 220, 151643, 151645]


def prompt_ids(n, vocab, seed):
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(0, min(vocab, 151643), size=n)]


def compare(case, mode, alone, batched):
    worst, same = 0.0, True
    for (ids_a, lp_a, w_a, _), (ids_b, lp_b, w_b, _) in zip(alone, batched):
        same = same and ids_a == ids_b
        if ids_a != ids_b:
            continue
        a = np.array(lp_a + sum(w_a, []), dtype=np.float64)
        b = np.array(lp_b + sum(w_b, []), dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a))))))
    max_batch = max(r[3]["max_batch"] for r in batched)
    ok = same and worst < TOL and max_batch >= len(batched) - (1 if mode == "join" else 0)
    print(f"{'ok  ' if ok else 'FAIL'} batch-parity {case} {mode}: tokens "
          f"{'identical' if same else 'DIFFER'}, logprob rel diff {worst:.2e} (bar {TOL}), "
          f"max batch {max_batch}")
    return {"check": "batch", "case": case, "mode": mode, "ok": ok, "tokens_identical": same,
            "logprob_rel_diff": worst, "max_batch": max_batch}


def main():
    libdir, report = sys.argv[1], sys.argv[2]
    lib = lmdabi.Library(os.path.join(libdir, "liblmdrive_ref.so"))
    results = []
    for model in ["random:tiny", "random:tiny-untied", "random:qwen2.5-1.5b"]:
        for dtype in ["fp16", "bf16"]:
            case = f"{model} {dtype}"
            eng = lib.engine({"model": model, "seed": 3, "device": "cuda", "dtype": dtype,
                              "max_batch": 8, "step_tokens": 64})
            try:
                vocab = eng.info["vocab"]
                prompts = [prompt_ids(n, vocab, 100 + i) for i, n in enumerate(LENGTHS)]
                alone = []
                for p in prompts:
                    ids, lps, res = eng.greedy(p, STEPS, watch=WATCH)
                    alone.append((ids, lps, res["watch"], res))
                results.append(compare(case, "batch", alone, eng.batch_greedy(prompts, STEPS, watch=WATCH)))
                results.append(compare(case, "join", alone,
                                       eng.batch_greedy(prompts, STEPS, watch=WATCH, join_after=8)))
            finally:
                eng.close()
    json.dump({"results": results}, open(report, "w"), indent=1)
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
