#!/usr/bin/env python3
"""Where one decode step's or one prefill's time goes: runs the ref engine's
CUDA backend under Nsight Compute (ncu) and sums each kernel's isolated
duration and DRAM bytes.

usage: profile_decode.py LIBDIR OUT.csv [preset] [prompt tokens]
       profile_decode.py --prefill LIBDIR OUT.csv [preset] [prompt tokens]
       profile_decode.py --summarise OUT.csv   (the table of an earlier run)
Needs ncu on the PATH. The engine runs a prompt of the given length (default
10000) and three decode steps; the kernels of the second decode step are
profiled one at a time (ncu serialises them, so launch gaps and overlap are
not in these figures: compare the sum with the step's CUDA-event time).
With --prefill the engine prefills the prompt twice and every kernel of the
second prefill is profiled: the profiler is switched on around it
(cuProfilerStart/Stop), so loading the weights is not in the figures.
"""
import csv
import collections
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Kernels of a decode step; in the prefill only the norms, the embedding and
# the logits kernel match, and each layer has two norms.
FILTER = "regex:gemv|stream_kernel|decode_|rmsnorm|round|embed|combine|allreduce|step"


def step_kernels(layers):
    """Kernels of one decode step at tp=1 under the switches in the
    environment (the child runs with LMDREF_CUDA_AHEAD=0: no advance kernel
    between steps)."""
    warp = os.environ.get("LMDREF_CUDA_GEMV") != "stream"
    separate = os.environ.get("LMDREF_CUDA_COMBINE") != "merged"
    # warp: norm, q|k|v, attention, o, norm, gate|up, down; + embed, final norm, lm_head, round
    # stream: q|k|v, attention, o, gate|up, down; + embed, lm_head, round
    per_layer = (7 if warp else 5) + (1 if separate else 0)
    return per_layer * layers + (4 if warp else 3)


def child(libdir, preset, n, prefill=False):
    sys.path.insert(0, HERE)
    import lmdabi
    lib = lmdabi.Library(os.path.join(libdir, "liblmdrive_ref.so"))
    e = lib.engine({"model": f"random:{preset}", "seed": 1, "device": "cuda", "dtype": "fp16"})
    import random
    rng = random.Random(1)
    prompt = [rng.randrange(0, 150000) for _ in range(n)]
    if not prefill:
        e.greedy(prompt, 4)
        e.close()
        return
    import ctypes
    cu = ctypes.CDLL("libcuda.so.1")
    e.greedy(prompt, 1)  # warm: buffers sized, cuBLAS's choices made
    # The profiler's switch acts on the calling thread's context: the
    # device's primary one, which the engine's runtime calls use too.
    ctx = ctypes.c_void_p()
    if cu.cuInit(0) or cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0) or cu.cuCtxSetCurrent(ctx):
        sys.exit("profile: no CUDA context for cuProfilerStart")
    cu.cuProfilerStart()
    e.greedy(prompt, 1)  # one prefill; the first token comes from its logits
    cu.cuProfilerStop()
    e.close()


def main():
    if sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:] == ["prefill"])
        return
    if sys.argv[1] == "--summarise":
        summarise(open(sys.argv[2]).read(), sys.argv[2])
        return
    prefill = sys.argv[1] == "--prefill"
    args = sys.argv[2:] if prefill else sys.argv[1:]
    libdir, out = args[0], args[1]
    preset = args[2] if len(args) > 2 else "qwen2.5-14b"
    n = int(args[3]) if len(args) > 3 else 10000
    layers = {"qwen2.5-14b": 48, "qwen2.5-32b": 64, "qwen2.5-1.5b": 28}[preset]
    metrics = ["--metrics", "gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum"]
    child_cmd = [sys.executable, os.path.abspath(__file__), "--child", libdir, preset, str(n)]
    if prefill:
        cmd = ["ncu", "--csv", "--target-processes", "all", "--profile-from-start", "off",
               *metrics, *child_cmd, "prefill"]
        what = f"the prefill of a {n}-token prompt ({preset})"
    else:
        before = 2 * layers + 3  # the prefill's kernels that match: norms, embed, logits
        step = step_kernels(layers)
        cmd = ["ncu", "--csv", "--target-processes", "all", "--graph-profiling", "node",
               "--kernel-name", FILTER, "--launch-skip", str(before + step), "--launch-count", str(step),
               *metrics, *child_cmd]
        what = f"one decode step of {preset} after a {n}-token prompt"
    env = dict(os.environ, LMDREF_CUDA_AHEAD="0")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    open(out, "w").write(res.stdout)
    if not summarise(res.stdout, what):
        print(res.stderr[-3000:])
        sys.exit(1)


def summarise(text, what):
    rows = [r for r in csv.reader(l for l in text.splitlines() if l.startswith('"'))]
    if not rows:
        return False
    head = rows[0]
    ki, mi, vi, ui = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value"), head.index("Metric Unit")
    idi = head.index("ID")
    per = collections.defaultdict(dict)
    names = {}
    for r in rows[1:]:
        scale = {"ns": 1e-9, "nsecond": 1e-9, "us": 1e-6, "usecond": 1e-6, "ms": 1e-3,
                 "msecond": 1e-3, "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}[r[ui]]
        per[r[idi]][r[mi]] = float(r[vi].replace(",", "")) * scale
        # "void lmdcu::<unnamed>::rmsnorm_kernel<__half, __half>(…)" → rmsnorm_kernel
        bare = r[ki].replace("void ", "").replace("<unnamed>::", "").replace("(anonymous namespace)::", "")
        name = bare.split("<")[0].split("(")[0].split("::")[-1]
        job = re.search(r"Job(\w+)", r[ki])
        names[r[idi]] = name + (f"/{job.group(1)}" if job else "")
    agg = collections.OrderedDict()
    for i, m in per.items():
        a = agg.setdefault(names[i], [0, 0.0, 0.0])
        a[0] += 1
        a[1] += m.get("gpu__time_duration.sum", 0)
        a[2] += m.get("dram__bytes_read.sum", 0) + m.get("dram__bytes_write.sum", 0)
    total_t = sum(a[1] for a in agg.values())
    total_b = sum(a[2] for a in agg.values())
    print(f"{what}, kernels profiled one at a time:")
    print(f"{'kernel':46s} {'count':>5s} {'us':>9s} {'share':>6s} {'MB':>9s} {'TB/s':>6s}")
    for k, (c, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{k:46s} {c:5d} {t * 1e6:9.1f} {100 * t / total_t:5.1f}% {b / 1e6:9.1f} {b / t / 1e12 if t else 0:6.2f}")
    print(f"{'total':46s} {sum(a[0] for a in agg.values()):5d} {total_t * 1e6:9.1f}        "
          f"{total_b / 1e6:9.1f} {total_b / total_t / 1e12:6.2f}")
    return True


if __name__ == "__main__":
    main()
