"""Pieces the vLLM, LMDeploy and TensorRT-LLM adapters share: model folder
facts, the stop sequences those libraries cannot take as tokens, and the
zero-compute stream that measures an adapter's own cost per token."""
import asyncio
import concurrent.futures
import inspect
import json
import os
import sys
import threading
import types

from .common import EngineError, StopRules, now_ns, result


def model_folder(path, engine, trust=False):
    """A local checkpoint (or engine) folder: these libraries load files,
    never random:<preset>. A folder that ships its own model code (auto_map
    in config.json) is refused unless the user allowed it: some libraries
    run such code without asking."""
    if not path:
        raise EngineError("engine %s: no model; give --model with a local model folder" % engine)
    if path.startswith("random:"):
        raise EngineError("engine %s loads model folders only; write random weights to one first: "
                          "lmdrive model init --preset %s --dtype fp16 --out DIR" % (engine, path[len("random:"):] or "tiny"))
    if not os.path.isdir(path):
        raise EngineError("engine %s: --model %s is not a folder" % (engine, path))
    if not trust and read_json(os.path.join(path, "config.json")).get("auto_map"):
        raise EngineError("engine %s: %s ships its own model code (auto_map in config.json), which lmdrive lets the "
                          "library run only with --trust-remote-code (read it first)" % (engine, path))
    return path


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def folder_facts(path):
    """What config.json and generation_config.json say about stopping and
    length: the EOS union (ids, as the model's files give them) and
    max_position_embeddings."""
    cfg = read_json(os.path.join(path, "config.json"))
    gen = read_json(os.path.join(path, "generation_config.json"))
    eos = []
    for v in (cfg.get("eos_token_id"), gen.get("eos_token_id")):
        for i in (v if isinstance(v, list) else [v] if v is not None else []):
            if int(i) not in eos:
                eos.append(int(i))
    return {"eos_ids": eos, "max_position_embeddings": cfg.get("max_position_embeddings"),
            "vocab_size": cfg.get("vocab_size", 0), "generation_config": gen}


def check_prompt(req, vocab):
    """Refuses ids outside the vocabulary before they reach the library
    (some index out of range on the GPU instead of answering)."""
    if vocab > 0:
        for t in req.prompt:
            if not 0 <= t < vocab:
                raise EngineError("request: token id %d is outside the vocabulary (0..%d)" % (t, vocab - 1))


def stop_sequence_hit(generated, req):
    """Index of the request stop sequence that matches the end of the output
    (checked once min_new tokens exist), or -1. The libraries take single
    stop ids only; longer sequences are matched here."""
    n = len(generated)
    if n < max(req.min_new, 1):
        return -1
    for i, seq in enumerate(req.stop_sequences):
        if len(seq) > 1 and n >= len(seq) and generated[n - len(seq):] == seq:
            return i
    return -1


def versions(*modules):
    v = {"python": sys.version.split()[0]}
    for name in modules:
        m = sys.modules.get(name)
        if m is not None:
            v[name] = str(getattr(m, "__version__", "?"))
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "version", None) is not None and getattr(torch.version, "cuda", None):
        v["torch_cuda"] = torch.version.cuda
    return v


def calibrate(req, sink, cancel, consume, vocab, eos_ids, make_output):
    """Zero compute: feeds the adapter's own output handling (consume) with
    one library-shaped output per step, token i mod vocab, without the
    library. Stop rules, timestamps and the protocol are the real ones."""
    rules = StopRules(req, eos_ids)
    submit = now_ns()
    finish = None
    i = 0
    while finish is None:
        consume(make_output(i % vocab))
        i += 1
        finish = rules.check(sink.ids, cancel.is_set())
    return result(req, finish, sink.count, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=now_ns(),
                  stop_token=rules.stop_token, stop_sequence=rules.stop_sequence,
                  stop_ids=sorted(set(([] if req.ignore_eos else list(eos_ids)) + req.single_stop_ids())),
                  raw_status_text="calibrate: %s" % finish)


def ns(**kw):
    return types.SimpleNamespace(**kw)


class LoopThread:
    """An asyncio event loop on a thread of its own, for libraries whose
    streams are coroutines (LMDeploy, TensorRT-LLM): each request's stream
    runs on it as a task, so requests from several threads share one loop,
    and the library batches them. run(coro) waits for one; start_many(coros)
    creates every task in one pass of the loop (so they reach the library
    together) and returns a concurrent.futures.Future for each."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lmdrive-asyncio", daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def start_many(self, coros):
        futures = [concurrent.futures.Future() for _ in coros]

        def settle(f, task):
            if task.cancelled():
                f.set_exception(EngineError("the request's task was cancelled"))
            elif task.exception() is not None:
                f.set_exception(task.exception())
            else:
                f.set_result(task.result())

        async def launch():
            for f, c in zip(futures, coros):
                self.loop.create_task(c).add_done_callback(lambda t, f=f: settle(f, t))

        asyncio.run_coroutine_threadsafe(launch(), self.loop).result()
        return futures

    def close(self):
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def batch_info(max_sequences, joins=True, chunked_prefill=False, max_step_tokens=0):
    """The info keys of an engine that runs several requests at once."""
    info = {"max_sequences": int(max_sequences)}
    flags = (["join"] if joins else []) + (["chunked_prefill"] if chunked_prefill else [])
    if flags:
        info["batching"] = flags
    if max_step_tokens:
        info["max_step_tokens"] = int(max_step_tokens)
    return info


def calibrate_info(backend, max_sequences, vocab, eos_ids, what):
    """The info of an adapter's zero-compute mode: what it runs without its
    library (what: the output handling it feeds)."""
    return {**batch_info(max_sequences), "backend": backend, "version": "calibrate (no library)",
            "model": "calibrate", "dtype": "none", "vocab_size": vocab, "eos_ids": eos_ids, "versions": versions(),
            "effective_config": {"calibrate": True, "what": what}}


def thread_futures(fns):
    """Runs each fn on a thread of its own: a concurrent.futures.Future each
    (the zero-compute modes, which share no engine)."""
    futures = []
    for fn in fns:
        f = concurrent.futures.Future()

        def body(f=f, fn=fn):
            try:
                f.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the waiter
                f.set_exception(e)
        threading.Thread(target=body, name="lmdrive-calibrate", daemon=True).start()
        futures.append(f)
    return futures


async def maybe_await(x):
    if inspect.isawaitable(x):
        await x


class LoopStreams:
    """The request flow of the adapters whose streams are coroutines on a
    LoopThread (LMDeploy, TensorRT-LLM). A subclass sets self.runner,
    self.calibrate, self.vocab and calibration_eos(), and gives
    _prepare(req) (checks a request and makes the library's parameters; a
    batch prepares every request before starting any), _open(prepared, req)
    (the library's output stream and the call that stops it), _consume and
    _result(req, sink, state, submit, done, prepared)."""

    def generate(self, req, sink, cancel):
        if self.calibrate:
            return calibrate(req, sink, cancel, lambda out: self._consume(out, req, sink, now_ns()), self.vocab,
                             self.calibration_eos(), self.calibration_output)
        return self.runner.run(self._request(self._prepare(req), req, sink, cancel))

    def start_batch(self, items):
        """Every request's stream started in one pass of the loop."""
        if self.calibrate:
            return thread_futures([lambda i=i: self.generate(*i) for i in items])
        prepared = [self._prepare(req) for req, _, _ in items]  # every request checked first
        return self.runner.start_many([self._request(p, req, sink, cancel)
                                       for p, (req, sink, cancel) in zip(prepared, items)])

    async def _request(self, prepared, req, sink, cancel):
        state = {"last": None, "ours": None, "stop_sequence": -1}
        submit = now_ns()
        stream, stop = self._open(prepared, req)
        async for out in stream:
            self._consume(out, req, sink, now_ns())
            state["last"] = out
            if state["ours"] is None:
                hit = stop_sequence_hit(sink.ids, req)
                if hit >= 0:
                    state["ours"], state["stop_sequence"] = "stop", hit
                elif cancel.is_set():
                    state["ours"] = "cancelled"
                if state["ours"] is not None:
                    await maybe_await(stop())
        return self._result(req, sink, state, submit, now_ns(), prepared)
