"""A worker with one extra engine, "fault", for lmdrive's protocol tests:
it generates without any library and can crash, hang or fail in each phase.
It is a test fake and never ships (the Makefile copies only the worker)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lmdrive_worker  # noqa: E402
from lmdrive_py.common import EngineError, StopRules, now_ns, result  # noqa: E402


def crash(where):
    print("about to crash in %s" % where, file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)


def hang(where):
    print("hanging in %s" % where, file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


class FaultAdapter:
    """Emits token i mod vocab at each step; `bundle` tokens per observation.
    max_sequences > 1: runs that many requests at once (each on the
    worker's thread for it); the prompt [666] fails after two tokens."""

    def __init__(self, config):
        self.mode = config.get("mode", "")
        self.step_s = config.get("step_us", 0) / 1e6
        self.bundle = int(config.get("bundle", 1))
        self.vocab = 1000
        self.max_sequences = int(config.get("max_sequences", 1))

    def open(self):
        if self.mode == "print_stdout":
            print("library noise on stdout: must not reach the protocol")
        if self.mode == "crash_load":
            crash("load")
        if self.mode == "hang_load":
            hang("load")
        if self.mode == "child_hang_load":
            import subprocess
            child = subprocess.Popen(["sleep", "3600"])
            print("started child %d" % child.pid, file=sys.stderr, flush=True)
            hang("load")
        if self.mode == "fail_load":
            raise EngineError("fault: load failed on purpose")
        if self.mode == "bug_load":
            raise KeyError("no such thing")
        return {"backend": "fault", "version": "fault 1", "model": "none", "dtype": "none", "vocab_size": self.vocab,
                "eos_ids": [7], "caps": ["logprobs", "watch"], "versions": {"python": sys.version.split()[0]},
                "effective_config": {"mode": self.mode, "bundle": self.bundle}}

    def close(self):
        pass

    def generate(self, req, sink, cancel):
        submit = now_ns()
        if self.mode == "print_stdout":
            print("more noise on stdout")
        if self.mode == "crash_prefill":
            crash("prefill")
        if self.mode == "hang_prefill":
            hang("prefill")
        rules = StopRules(req, [7])
        out = []
        finish = None
        while finish is None:
            if self.step_s:
                time.sleep(self.step_s)
            k = min(self.bundle, req.max_new - len(out))
            ids = [(len(out) + j) % self.vocab for j in range(k)]
            t = now_ns()
            lps = [-0.5] * k if req.want_logprobs else None
            watched = [[-1.0 * (w + 1) for w in req.watch_ids] for _ in ids] if req.watch_ids else None
            sink.emit(ids, t, lps, watched)
            for i in ids:
                out.append(i)
                finish = rules.check(out, cancel.is_set())
                if finish:
                    break
            if req.prompt == [666] and len(out) >= 2:
                raise EngineError("fault: request 666 fails on purpose")
            if len(out) >= 3 and self.mode == "crash_decode":
                crash("decode")
            if len(out) >= 3 and self.mode == "hang_decode":
                hang("decode")
        return result(req, finish, sink.count, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=now_ns(),
                      stop_token=rules.stop_token, stop_sequence=rules.stop_sequence,
                      stop_ids=[] if req.ignore_eos else [7])


if __name__ == "__main__":
    sys.exit(lmdrive_worker.main({"fault": FaultAdapter}))
