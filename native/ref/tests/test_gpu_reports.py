#!/usr/bin/env python3
"""The GPU check's report scripts on records written here, without a GPU:
summarize.py keeps load runs (per-request records of batch14 and load14) out
of the single-request runs table, and profile_decode.py names the engine's
kernels from Nsight Compute's demangled names ("lmdcu::<unnamed>::…")."""
import contextlib
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cuda"))
import profile_decode  # noqa: E402
import summarize  # noqa: E402


def record(load=None):
    workload = {"model": "random:qwen2.5-14b"}
    if load:
        workload["load"] = load
    return {"status": "ok", "workload": workload, "engine": {"tp_size": 1}, "prompt": {"tokens": 1024},
            "metrics": {"output_tokens": 256, "ttft_s": 0.05, "device_prefill_s": 0.049,
                        "decode_tok_s": 120.0, "device_decode_s": 2.1}}


def main():
    fails = []
    single = summarize.run_figures([record(), record()])
    if not single or single["n"] != 2 or abs(single["decode"] - 120.0) > 1e-9:
        fails.append(f"a single-request run lost its figures: {single}")
    load = summarize.run_figures([record({"mode": "concurrency", "concurrency": 16})] * 3)
    if load is not None:
        fails.append(f"a load run was summarised as a single-request run: {load}")

    head = '"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"'
    rows = [head]
    for i, (name, us) in enumerate([
            ("void lmdcu::<unnamed>::rmsnorm_kernel<__half, __half>(T1 *, const T2 *, const T1 *, T1 *, int, float)", "4"),
            ("void lmdcu::(anonymous namespace)::rmsnorm_kernel<__half, __half>(T1 *)", "6"),
            ("nvjet_sm90_hsh_256x152_64x4_2x1_v_bz_coopA_TNT", "1500")]):
        rows.append(f'"{i}","{name}","gpu__time_duration.sum","usecond","{us}"')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = profile_decode.summarise("\n".join(rows), "test")
    text = out.getvalue()
    norm = [l for l in text.splitlines() if l.startswith("rmsnorm_kernel ")]
    if not ok or len(norm) != 1 or norm[0].split()[1] != "2" or "nvjet_sm90_hsh_256x152" not in text:
        fails.append("profile_decode.summarise named the kernels wrongly:\n" + text)
    for f in fails:
        print("FAIL", f)
    if fails:
        sys.exit(1)
    print("ok: load runs kept out of the runs table; kernels named from ncu's demangled names")


if __name__ == "__main__":
    main()
