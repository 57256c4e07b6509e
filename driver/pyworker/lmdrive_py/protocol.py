"""The runner protocol, worker side (driver/protocol.go is the Go side).

    lmdrive -> worker                        worker -> lmdrive
    {"op":"open", engine, library, config}   {"ev":"ready", info} | {"ev":"error", phase:"load"}
    {"op":"generate", id, request}           {"ev":"tokens", id, tokens}... then {"ev":"result", id, result}
                                             | {"ev":"error", id, phase, error}
    {"op":"batch", ids, requests}            the same per id; a batch that cannot start at all:
                                             {"ev":"error", ids, phase:"prefill", error}
    {"op":"cancel", id}                      (that request's result then says "cancelled";
                                             without an id: every request in flight)
    {"op":"close"}                           the worker exits 0

Tokens travel column by column: {"i0", "ids", "t", "b", "lp"?, "w"?}.

Several requests at once: an adapter whose open() leaves max_sequences > 1
on itself (and reports it in its info) gets each generate on its own thread,
so its generate must be safe to call from several threads at once, all
sharing the engine (the library batches them); an optional
start_batch([(req, sink, cancel), ...]) starts a whole batch together and
returns one concurrent.futures.Future per request (a result dict, or an
EngineError), raising EngineError if the batch cannot start at all. Other
adapters (max_sequences 1) run one request at a time on the main loop, as
lmdrive never sends them more (their batches of more than one are refused).
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
    carries that time and the bundle size len(ids). rid: the request's id in
    the protocol (0: none, for a request sent without one)."""

    def __init__(self, channel, rid=0):
        self.channel = channel
        self.head = '{"ev":"tokens",' + ('"id":%d,' % rid if rid else "") + '"tokens":{"i0":'
        self.count = 0
        self.first_ns = -1
        self.last_ns = -1
        self.ids = []

    def emit(self, ids, t_ns, logprobs=None, watched=None):
        k = len(ids)
        if k == 0:
            return
        parts = [self.head, str(self.count), ',"ids":', _ints(ids),
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


def _with_id(ev, rid):
    if rid:
        ev["id"] = rid
    return ev


class _Requests:
    """The requests in flight: their cancel flags by id (0 for a request
    sent without one), and the threads that run them when the adapter runs
    several at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cancels = {}
        self.threads = set()

    def add(self, rid):
        ev = threading.Event()
        with self.lock:
            self.cancels[rid] = ev
        return ev

    def done(self, rid, ev):
        with self.lock:
            if self.cancels.get(rid) is ev:
                del self.cancels[rid]

    def cancel(self, rid):
        """Cancels one request, or every one when rid is 0/absent."""
        with self.lock:
            for k, ev in self.cancels.items():
                if not rid or k == rid:
                    ev.set()

    def start(self, fn):
        t = threading.Thread(target=fn, name="lmdrive-request", daemon=True)
        with self.lock:
            self.threads.add(t)
        t.start()

    def finished(self):
        with self.lock:
            self.threads.discard(threading.current_thread())

    def wait(self, limit_s):
        """Waits (up to limit_s in all) for the request threads to end."""
        deadline = time.monotonic() + limit_s
        while True:
            with self.lock:
                threads = list(self.threads)
            if not threads:
                return
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return


def serve(stdin, channel, extra_engines=None):
    """The worker's main loop: commands in, events out, until close or EOF.
    A reader thread takes "cancel" while generations run."""
    extra = extra_engines or {}
    cmds = queue.Queue()
    inflight = _Requests()

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
            op = cmd.get("op")
            if op == "cancel":
                inflight.cancel(int(cmd.get("id") or 0))
                continue
            # A generation's cancel flag exists from the moment its command
            # is read, so a cancel right behind it is never lost.
            if op == "generate":
                cmd["_cancel"] = inflight.add(int(cmd.get("id") or 0))
            elif op == "batch":
                cmd["_cancels"] = [inflight.add(int(i)) for i in cmd.get("ids") or []]
            cmds.put(cmd)
        cmds.put(None)

    threading.Thread(target=read, name="lmdrive-commands", daemon=True).start()
    adapter = None
    name = ""
    many = 1

    def finish(rid, cancel, sink, run):
        """Runs one request (run() gives its result) and sends its outcome."""
        try:
            res = run()
        except EngineError as e:
            channel.send(_with_id({"ev": "error", "phase": "decode" if sink.count else "prefill", "error": str(e)}, rid))
            return
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            channel.send(_with_id({"ev": "error", "phase": "decode" if sink.count else "prefill",
                                   "error": _unexpected("engine %s failed to generate" % name, e)}, rid))
            return
        finally:
            inflight.done(rid, cancel)
        drain_stderr()
        channel.send(_with_id({"ev": "result", "result": res}, rid))

    def threaded(rid, cancel, sink, run):
        def body():
            try:
                finish(rid, cancel, sink, run)
            finally:
                inflight.finished()
        inflight.start(body)

    def refuse_batch(ids, cancels, msg):
        for rid, c in zip(ids, cancels):
            inflight.done(rid, c)
        channel.send({"ev": "error", "ids": ids, "phase": "prefill", "error": msg})

    def batch(cmd):
        ids = [int(i) for i in cmd.get("ids") or []]
        cancels = cmd["_cancels"]
        raw = cmd.get("requests") or []
        if not ids or len(ids) != len(raw) or len(set(ids)) != len(ids) or 0 in ids:
            return refuse_batch(ids, cancels, "worker: a batch needs one distinct non-zero id per request")
        if len(ids) > many:
            return refuse_batch(ids, cancels, "engine %s runs at most %d sequences at once; the batch has %d" % (name, many, len(ids)))
        try:
            reqs = [Request(r) for r in raw]
        except EngineError as e:
            return refuse_batch(ids, cancels, "batch request: %s" % e)
        sinks = [TokenSink(channel, rid) for rid in ids]
        start = getattr(adapter, "start_batch", None)
        if start is None:
            for rid, req, sink, c in zip(ids, reqs, sinks, cancels):
                threaded(rid, c, sink, lambda req=req, sink=sink, c=c: adapter.generate(req, sink, c))
            return
        try:
            futures = start(list(zip(reqs, sinks, cancels)))
        except EngineError as e:
            return refuse_batch(ids, cancels, str(e))
        except Exception as e:  # noqa: BLE001
            return refuse_batch(ids, cancels, _unexpected("engine %s failed to start a batch" % name, e))
        for rid, sink, c, f in zip(ids, sinks, cancels, futures):
            threaded(rid, c, sink, f.result)

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
                many = max(1, int(getattr(adapter, "max_sequences", 1) or 1))
                info = dict(info)
                info["max_sequences"] = many
                drain_stderr()
                channel.send({"ev": "ready", "info": _info(name, info, load_ns)})
            elif op in ("generate", "batch"):
                if adapter is None:
                    channel.send({"ev": "error", "phase": "prefill", "error": "worker: %s before open" % op})
                    return 1
                if op == "batch":
                    batch(cmd)
                    continue
                rid = int(cmd.get("id") or 0)
                cancel = cmd["_cancel"]
                sink = TokenSink(channel, rid)

                def run(cmd=cmd, sink=sink, cancel=cancel):
                    return adapter.generate(Request(cmd.get("request") or {}), sink, cancel)
                if many > 1:
                    threaded(rid, cancel, sink, run)
                else:
                    finish(rid, cancel, sink, run)
            else:
                channel.send({"ev": "error", "error": "worker: unknown command %r" % op})
                return 1
    finally:
        # Requests still running at close or EOF are cancelled and given a
        # moment to end before the engine closes under them.
        inflight.cancel(0)
        inflight.wait(10.0)
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
    return serve(raw_lines(0), Channel(proto), extra_engines)


def raw_lines(fd):
    """The lines of a file descriptor, read with os.read: the command reader
    is a daemon thread still blocked in a read when the worker exits, and a
    blocked read of sys.stdin holds its buffer's lock, which aborts the
    interpreter's shutdown ("could not acquire lock for <stdin> at
    interpreter shutdown"); a bare os.read holds none."""
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except InterruptedError:
            continue
        if not chunk:
            if buf:
                yield buf
            return
        buf += chunk
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            yield buf[:i + 1]
            buf = buf[i + 1:]
