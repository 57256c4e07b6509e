"""What every adapter shares: the clock, requests, results, stop rules,
config checks and one-line errors."""
import importlib
import math
import re
import sys
import time

# FINISH words are the runner protocol's finish reasons (driver.FinishReason).
FINISH = ("none", "eos", "stop", "length", "limit", "cancelled", "timeout", "error")


def now_ns():
    """CLOCK_MONOTONIC in nanoseconds: the clock of every lmdrive timestamp,
    the same one the native engines read (clock_gettime), so times taken here
    and in Go or C compare directly."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class EngineError(Exception):
    """A failure with a one-line message that says what is wrong and how to
    fix it; the worker sends it to lmdrive as is (no traceback)."""


def python_name():
    return sys.executable or "this Python"


def require(module, pip, what=None):
    """Imports a library the adapter needs, or fails with the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if getattr(e, "name", None) not in (None, module, module.split(".")[0]):
            # The library is there but one of its own imports failed.
            raise EngineError("%s is installed for %s but cannot be imported: %s (reinstall it: pip install %s)" % (
                what or module, python_name(), e, pip))
        raise EngineError("%s is not installed for %s: pip install %s (or point --python at an environment that has it)" % (
            what or module, python_name(), pip))


def version_tuple(v):
    """'2.11.0+cu130' -> (2, 11, 0); unknown parts count as 0."""
    parts = []
    for p in re.split(r"[.+-]", str(v))[:3]:
        m = re.match(r"\d+", p)
        parts.append(int(m.group()) if m else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def check_version(what, version, lowest, below=None):
    """Fails with the supported range when version is outside [lowest, below)."""
    v = version_tuple(version)
    supported = "%s or later" % lowest if below is None else "%s up to (not including) %s" % (lowest, below)
    if v < version_tuple(lowest) or (below is not None and v >= version_tuple(below)):
        raise EngineError("%s %s is not supported by lmdrive's adapter: it supports %s (pip install '%s>=%s')" % (
            what, version, supported, what, lowest))


def take_config(config, known, engine):
    """Rejects unknown config keys, naming the valid ones."""
    bad = sorted(set(config) - set(known))
    if bad:
        raise EngineError("engine %s: unknown config key %s; valid keys: %s" % (
            engine, ", ".join('"%s"' % k for k in bad), ", ".join(sorted(known))))
    return dict(config)


class Request:
    """One generation request as the runner protocol carries it: token IDs in."""

    def __init__(self, d):
        self.prompt = [int(t) for t in d.get("prompt") or []]
        self.max_new = int(d.get("max_new_tokens") or 0)
        self.min_new = int(d.get("min_new_tokens") or 0)
        self.ignore_eos = bool(d.get("ignore_eos"))
        self.stop_sequences = [[int(t) for t in s] for s in d.get("stop_sequences") or []]
        self.watch_ids = [int(t) for t in d.get("watch_ids") or []]
        s = d.get("sampling") or {}
        self.temperature = float(s.get("temperature") or 0)
        self.top_k = int(s.get("top_k") or 0)
        self.top_p = float(s.get("top_p") or 0)
        self.seed = int(s.get("seed") or 0)
        self.want_logprobs = bool(d.get("want_logprobs"))
        if not self.prompt:
            raise EngineError("request: the prompt is empty")
        if self.max_new < 1 or not 0 <= self.min_new <= self.max_new:
            raise EngineError("request: max_new_tokens %d / min_new_tokens %d out of range" % (self.max_new, self.min_new))

    @property
    def greedy(self):
        return self.temperature == 0

    def single_stop_ids(self):
        return [s[0] for s in self.stop_sequences if len(s) == 1]


class StopRules:
    """The reference engine's stop rules (docs/ref-engine.md), for adapters
    that decide themselves when to stop: after each token, cancel; then, once
    min_new tokens exist, EOS (unless ignore_eos) and stop sequences; then the
    requested length, then a clamped budget."""

    def __init__(self, req, eos_ids, budget=None):
        self.req = req
        self.eos = set() if req.ignore_eos else set(eos_ids)
        self.budget = req.max_new if budget is None else min(budget, req.max_new)
        self.stop_sequence = -1
        self.stop_token = -1

    def check(self, generated, cancelled=False):
        """Returns the finish word once generation must end, else None."""
        n = len(generated)
        if cancelled:
            return "cancelled"
        if n and n >= self.req.min_new:
            last = generated[-1]
            if last in self.eos:
                self.stop_token = last
                return "eos"
            for i, seq in enumerate(self.req.stop_sequences):
                if n >= len(seq) and generated[n - len(seq):] == seq:
                    self.stop_sequence, self.stop_token = i, last
                    return "stop"
        if n >= self.req.max_new:
            return "length"
        if n >= self.budget:
            return "limit"
        return None


def result(req, finish, n_out, tokens_first=-1, tokens_last=-1, **kw):
    """A result object as the runner protocol carries it (driver.Result).
    Times the engine cannot give are -1."""
    if finish not in FINISH:
        raise ValueError("unknown finish %r" % finish)
    r = {
        "finish": finish, "raw_status": 0, "raw_status_text": finish,
        "prompt_tokens": len(req.prompt), "output_tokens": n_out, "cached_prompt_tokens": 0,
        "max_new_requested": req.max_new, "max_new_effective": req.max_new, "limit_source": "",
        "stop_token": -1, "stop_sequence": -1, "ignore_eos_applied": req.ignore_eos, "stop_ids": [],
        "submit_ns": -1, "first_ns": tokens_first, "last_ns": tokens_last, "done_ns": -1,
        "device_prefill_ns": -1, "device_decode_ns": -1, "engine_first_ns": -1, "engine_last_ns": -1,
    }
    for k, v in kw.items():
        if k not in r and k not in ("detail", "effective_config"):
            raise ValueError("unknown result field %r" % k)
        r[k] = v
    return r


def finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None
