"""The runner protocol, worker side (driver/protocol.go is the Go side).

    lmdrive -> worker                        worker -> lmdrive
    {"op":"open", engine, library, config}   {"ev":"ready", info} | {"ev":"error", phase:"load"}
    {"op":"generate", request}               {"ev":"tokens", tokens}... then {"ev":"result", result}
    {"op":"cancel"}                          (the result then says "cancelled")
    {"op":"close"}                           the worker exits 0

Tokens travel column by column: {"i0", "ids", "t", "b", "lp"?, "w"?}.
"""
import fcntl
import importlib
import json
import math
import os
import queue
import stat
import sys
import termios
import threading
import time
import traceback

from . import PROTOCOL, WORKER_VERSION
from .common import EngineError, Request, now_ns

# The engines this worker drives: name -> (module, class). Each module is
# imported only when its engine is opened, so a missing library costs
# nothing to the others.
ENGINES = {
    "hf": ("lmdrive_py.hf_adapter", "HFAdapter"),
    "vllm": ("lmdrive_py.vllm_adapter", "VLLMAdapter"),
    "lmdeploy": ("lmdrive_py.lmdeploy_adapter", "LMDeployAdapter"),
    "trtllm-py": ("lmdrive_py.trtllm_adapter", "TRTLLMAdapter"),
}


class Channel:
    """Writes one event per line to the protocol's file descriptor, at once
    (no buffering), so lmdrive sees each token as soon as it is stamped."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def write_line(self, line):
        data = line.encode("utf-8")
        with self.lock:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]

    def send(self, ev):
        self.write_line(json.dumps(ev, separators=(",", ":"), allow_nan=False) + "\n")


def drain_stderr(limit_s=0.2):
    """Waits (briefly) until lmdrive has read everything written to stderr.
    Logs and events travel on two pipes, read by two goroutines: without
    this, a result could overtake the log lines that explain it (lmdrive eos
    reads them right after the result). On Linux FIONREAD on either end of a
    pipe says how many bytes are still unread."""
    sys.stderr.flush()
    try:
        if not stat.S_ISFIFO(os.fstat(2).st_mode):
            return
        buf = bytearray(4)
        deadline = time.monotonic() + limit_s
        while True:
            fcntl.ioctl(2, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.0005)
    except OSError:
        return


def _ints(xs):
    return "[" + ",".join([str(int(x)) for x in xs]) + "]"


def _logprobs(xs):
    return "[" + ",".join(["null" if x is None or not math.isfinite(x) else repr(float(x)) for x in xs]) + "]"


class TokenSink:
    """Sends tokens as they are observed. One call of emit is one
    observation: every id in it became visible at the same time, so each
    carries that time and the bundle size len(ids)."""

    def __init__(self, channel):
        self.channel = channel
        self.count = 0
        self.first_ns = -1
        self.last_ns = -1
        self.ids = []

    def emit(self, ids, t_ns, logprobs=None, watched=None):
        k = len(ids)
        if k == 0:
            return
        parts = ['{"ev":"tokens","tokens":{"i0":', str(self.count), ',"ids":', _ints(ids),
                 ',"t":', _ints([t_ns] * k), ',"b":', _ints([k] * k)]
        if logprobs is not None:
            parts += [',"lp":', _logprobs(logprobs)]
        if watched is not None:
            parts += [',"w":[', ",".join([_logprobs(w) for w in watched]), "]"]
        parts.append("}}\n")
        self.channel.write_line("".join(parts))
        if self.first_ns < 0:
            self.first_ns = t_ns
        self.last_ns = t_ns
        self.count += k
        self.ids.extend(int(i) for i in ids)


def load_adapter(name, extra):
    if name in extra:
        return extra[name]
    if name not in ENGINES:
        raise EngineError("the Python worker has no engine %r; it drives: %s" % (name, ", ".join(sorted(ENGINES))))
    module, cls = ENGINES[name]
    return getattr(importlib.import_module(module), cls)


def _info(name, adapter_info, load_ns):
    info = {"engine": name, "library": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
            "abi": "%s (python worker %s)" % (PROTOCOL, WORKER_VERSION), "backend": name, "version": "",
            "model": "", "dtype": "", "vocab_size": 0, "tp_size": 1, "device_ids": [], "eos_ids": [],
            "max_seq_len": 0, "max_input_len": 0, "caps": []}
    info.update(adapter_info)
    info["load_ns"] = load_ns
    return info


def _unexpected(what, e):
    """A one-line message for a bug or an unforeseen library error; the
    traceback goes to the engine log."""
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    return "%s: %s: %s (traceback in the engine log)" % (what, type(e).__name__, e)


def serve(stdin, channel, extra_engines=None):
    """The worker's main loop: commands in, events out, until close or EOF.
    A reader thread takes "cancel" while a generation runs."""
    extra = extra_engines or {}
    cmds = queue.Queue()
    state = {"cancel": None}
    lock = threading.Lock()

    def read():
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError as e:
                print("lmdrive worker: ignoring a line that is not JSON: %s" % e, file=sys.stderr)
                continue
            if cmd.get("op") == "cancel":
                with lock:
                    if state["cancel"] is not None:
                        state["cancel"].set()
                continue
            if cmd.get("op") == "generate":
                # The generation's cancel flag exists from the moment its
                # command is read, so a cancel right behind it is never lost.
                cmd["_cancel"] = threading.Event()
                with lock:
                    state["cancel"] = cmd["_cancel"]
            cmds.put(cmd)
        cmds.put(None)

    threading.Thread(target=read, name="lmdrive-commands", daemon=True).start()
    adapter = None
    name = ""
    try:
        while True:
            cmd = cmds.get()
            if cmd is None or cmd.get("op") == "close":
                return 0
            op = cmd.get("op")
            if op == "open":
                if adapter is not None:
                    channel.send({"ev": "error", "phase": "load", "error": "worker: an engine is already open"})
                    return 1
                name = cmd.get("engine") or ""
                t0 = now_ns()
                try:
                    cls = load_adapter(name, extra)
                    adapter = cls(cmd.get("config") or {})
                    info = adapter.open()
                except EngineError as e:
                    channel.send({"ev": "error", "phase": "load", "error": str(e)})
                    return 1
                except Exception as e:  # noqa: BLE001 - reported, never swallowed
                    channel.send({"ev": "error", "phase": "load", "error": _unexpected("engine %s failed to load" % name, e)})
                    return 1
                load_ns = now_ns() - t0
                drain_stderr()
                channel.send({"ev": "ready", "info": _info(name, info, load_ns)})
            elif op == "generate":
                if adapter is None:
                    channel.send({"ev": "error", "phase": "prefill", "error": "worker: generate before open"})
                    return 1
                sink = TokenSink(channel)
                cancel = cmd["_cancel"]
                try:
                    req = Request(cmd.get("request") or {})
                    res = adapter.generate(req, sink, cancel)
                except EngineError as e:
                    channel.send({"ev": "error", "phase": "decode" if sink.count else "prefill", "error": str(e)})
                    continue
                except Exception as e:  # noqa: BLE001
                    channel.send({"ev": "error", "phase": "decode" if sink.count else "prefill",
                                  "error": _unexpected("engine %s failed to generate" % name, e)})
                    continue
                finally:
                    with lock:
                        if state["cancel"] is cancel:
                            state["cancel"] = None
                drain_stderr()
                channel.send({"ev": "result", "result": res})
            else:
                channel.send({"ev": "error", "error": "worker: unknown command %r" % op})
                return 1
    finally:
        if adapter is not None:
            try:
                adapter.close()
            except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                traceback.print_exc(file=sys.stderr)


def serve_process(extra_engines):
    """Runs serve on this process's stdin and stdout. The protocol moves to a
    private copy of stdout and file descriptor 1 then points at stderr, so
    whatever a library prints lands in the engine log, not in the protocol."""
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Keep libraries off the network and off the user's caches' servers: a
    # model is a local folder or random weights, never a hub download.
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        os.environ.setdefault(k, "1")
    return serve(sys.stdin.buffer, Channel(proto), extra_engines)
