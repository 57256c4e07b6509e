"""Several requests at once: the vLLM, LMDeploy and TensorRT-LLM adapters
hand them to one engine, which batches them (the fakes record how many
they served together), and the worker's protocol carries request ids."""
import json
import queue
import threading
import time

import pytest

from lmdrive_py import protocol
from lmdrive_py.common import EngineError, Request, now_ns, result
from lmdrive_py.protocol import TokenSink
from test_adapters import ADAPTERS, opened, run


def items(channel, prompts, **kw):
    return [(Request(dict(kw, prompt=p)), TokenSink(channel, i + 1), threading.Event()) for i, p in enumerate(prompts)]


def by_id(channel):
    toks, order = {}, []
    for ev in channel.events:
        toks.setdefault(ev["id"], []).extend(ev["tokens"]["ids"])
        order.extend([ev["id"]] * len(ev["tokens"]["ids"]))
    return toks, order


def widest(name, a):
    """The most requests the fake library served at once."""
    return {"vllm": lambda: a.engine.widest, "lmdeploy": lambda: a.pipe.widest, "trtllm-py": lambda: a.llm.widest}[name]()


PROMPTS = [list(range(1, 11 + i)) for i in range(3)]  # lengths differ, so the fake's tokens do


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_batch_runs_together(name, model_dir, channel):
    a, info = opened(name, model_dir, {"step_ms": 1})
    assert info["max_sequences"] > 1 and "join" in info["batching"]
    futures = a.start_batch(items(channel, PROMPTS, max_new_tokens=12, ignore_eos=True))
    results = [f.result(30) for f in futures]
    toks, order = by_id(channel)
    for i, r in enumerate(results):
        assert r["finish"] == "length" and r["output_tokens"] == 12 == len(toks[i + 1])
        assert r["submit_ns"] <= r["first_ns"] <= r["last_ns"] <= r["done_ns"]
    # Interleaved: every request had its first token before any had its last.
    firsts = [order.index(i) for i in (1, 2, 3)]
    lasts = [len(order) - 1 - order[::-1].index(i) for i in (1, 2, 3)]
    assert max(firsts) < min(lasts)
    assert widest(name, a) == 3
    # The same tokens as each prompt alone.
    for i, p in enumerate(PROMPTS):
        from conftest import ListChannel
        alone = ListChannel()
        run(a, alone, prompt=p, max_new_tokens=12, ignore_eos=True)
        assert [t for ev in alone.events for t in ev["tokens"]["ids"]] == toks[i + 1]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_concurrent_generates_share_the_engine(name, model_dir, channel):
    a, _ = opened(name, model_dir, {"step_ms": 2})
    results = [None] * 3

    def one(i):
        results[i] = a.generate(Request({"prompt": PROMPTS[i], "max_new_tokens": 20, "ignore_eos": True}),
                                TokenSink(channel, i + 1), threading.Event())
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r["finish"] == "length" and r["output_tokens"] == 20 for r in results)
    assert widest(name, a) >= 2


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_cancel_one_of_many(name, model_dir, channel):
    a, _ = opened(name, model_dir, {"step_ms": 1})
    its = items(channel, PROMPTS[:2], max_new_tokens=30, ignore_eos=True)
    its[0] = (Request({"prompt": PROMPTS[0], "max_new_tokens": 100000, "ignore_eos": True}), its[0][1], its[0][2])
    futures = a.start_batch(its)
    time.sleep(0.01)
    its[0][2].set()
    first, second = futures[0].result(30), futures[1].result(30)
    assert first["finish"] == "cancelled" and first["output_tokens"] < 100000
    assert second["finish"] == "length" and second["output_tokens"] == 30


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_batch_checks_every_request_before_starting(name, model_dir, channel):
    a, _ = opened(name, model_dir)
    bad = items(channel, [PROMPTS[0], [151936 + 5]], max_new_tokens=4)
    with pytest.raises(EngineError, match="outside the vocabulary"):
        a.start_batch(bad)
    assert channel.events == [] and widest(name, a) == 0


def test_vllm_refused_request_fails_alone(model_dir, channel):
    a, _ = opened("vllm", model_dir, None, max_model_len=16)
    futures = a.start_batch(items(channel, [PROMPTS[0], list(range(1, 21)), PROMPTS[1]], max_new_tokens=4, ignore_eos=True))
    assert futures[0].result(30)["output_tokens"] == 4 and futures[2].result(30)["output_tokens"] == 4
    with pytest.raises(EngineError, match="engine vllm refused the request"):
        futures[1].result(30)


@pytest.mark.parametrize("name,cfg,want", [
    ("vllm", {}, 256), ("vllm", {"max_num_seqs": 2}, 2),
    ("lmdeploy", {}, 128), ("lmdeploy", {"max_batch_size": 8}, 8),
    ("trtllm-py", {}, 2048), ("trtllm-py", {"max_batch_size": 8, "enable_chunked_prefill": True}, 8)])
def test_max_sequences_is_the_library_limit(name, cfg, want, model_dir):
    a, info = opened(name, model_dir, None, **cfg)
    assert info["max_sequences"] == want == a.max_sequences
    if name == "lmdeploy":
        assert a.pipe.backend_config.max_batch_size == want  # always passed
    if name == "vllm" or cfg.get("enable_chunked_prefill"):
        assert "chunked_prefill" in info["batching"] and info["max_step_tokens"] == 8192


def test_vllm_scheduler_limit_queues_the_rest(model_dir, channel):
    a, _ = opened("vllm", model_dir, None, max_num_seqs=2)
    futures = a.start_batch(items(channel, PROMPTS, max_new_tokens=5, ignore_eos=True))
    assert all(f.result(30)["output_tokens"] == 5 for f in futures)
    assert a.engine.widest == 2


# The worker's protocol with several requests in flight, on an adapter
# that generates without a library.

class ManyAdapter:
    """Emits token i at step i, step_s apart; max_sequences from config;
    prompt [666] fails after two tokens."""

    def __init__(self, config):
        self.max_sequences = int(config.get("max_sequences", 1))
        self.step_s = float(config.get("step_s", 0.002))
        self.running = 0
        self.widest = 0
        self.lock = threading.Lock()

    def open(self):
        return {"backend": "many", "version": "1", "vocab_size": 1000, "versions": {"python": "3"},
                "effective_config": {}, "batching": ["join"]}

    def close(self):
        pass

    def generate(self, req, sink, cancel):
        with self.lock:
            self.running += 1
            self.widest = max(self.widest, self.running)
        try:
            submit = now_ns()
            finish = None
            while finish is None:
                time.sleep(self.step_s)
                sink.emit([sink.count % 1000], now_ns())
                if req.prompt == [666] and sink.count == 2:
                    raise EngineError("request 666 fails on purpose")
                finish = "cancelled" if cancel.is_set() else "length" if sink.count >= req.max_new else None
            return result(req, finish, sink.count, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=now_ns())
        finally:
            with self.lock:
                self.running -= 1


class Worker:
    """serve() on a thread, fed commands one at a time."""

    def __init__(self, config):
        from conftest import ListChannel

        class Chan(ListChannel):
            def send(self, ev):
                self.write_line(json.dumps(ev) + "\n")
        self.lines = queue.Queue()
        self.channel = Chan()
        self.adapters = []

        def make(cfg):
            a = ManyAdapter(cfg)
            self.adapters.append(a)
            return a

        def stdin():
            while True:
                line = self.lines.get()
                if line is None:
                    return
                yield line
        self.thread = threading.Thread(target=protocol.serve, args=(stdin(), self.channel, {"many": make}), daemon=True)
        self.thread.start()
        self.send({"op": "open", "engine": "many", "config": config})
        self.wait(lambda evs: any(e["ev"] in ("ready", "error") for e in evs))

    def send(self, cmd):
        self.lines.put(json.dumps(cmd))

    def wait(self, cond, limit_s=20):
        deadline = time.monotonic() + limit_s
        while not cond(self.channel.events):
            assert time.monotonic() < deadline, "timed out; events: %s" % self.channel.events[-5:]
            time.sleep(0.002)

    def ended(self, rid):
        for e in self.channel.events:
            if e["ev"] in ("result", "error") and (e.get("id") == rid or rid in e.get("ids", [])):
                return e
        return None

    def close(self):
        self.send({"op": "close"})
        self.thread.join(20)


def test_protocol_requests_in_flight_by_id():
    w = Worker({"max_sequences": 4})
    ready = w.channel.events[0]
    assert ready["ev"] == "ready" and ready["info"]["max_sequences"] == 4 and ready["info"]["batching"] == ["join"]
    w.send({"op": "generate", "id": 1, "request": {"prompt": [1], "max_new_tokens": 1 << 20}})
    w.send({"op": "generate", "id": 2, "request": {"prompt": [2], "max_new_tokens": 30}})
    w.send({"op": "batch", "ids": [3, 4], "requests": [{"prompt": [3], "max_new_tokens": 10}, {"prompt": [666], "max_new_tokens": 10}]})
    w.wait(lambda evs: all(w.ended(i) for i in (2, 3, 4)))
    w.send({"op": "cancel", "id": 1})
    w.wait(lambda evs: w.ended(1))
    assert w.ended(1)["result"]["finish"] == "cancelled"
    assert w.ended(2)["result"]["finish"] == "length" and w.ended(2)["result"]["output_tokens"] == 30
    assert w.ended(3)["result"]["output_tokens"] == 10
    failed = w.ended(4)
    assert failed["ev"] == "error" and failed["phase"] == "decode" and "666" in failed["error"]
    counts = {}
    for e in w.channel.events:
        if e["ev"] == "tokens":
            counts[e["id"]] = counts.get(e["id"], 0) + len(e["tokens"]["ids"])
    assert counts[2] == 30 and counts[3] == 10 and counts[4] == 2
    assert w.adapters[0].widest >= 3
    w.close()


def test_protocol_refuses_a_batch_beyond_the_limit_as_a_whole():
    w = Worker({"max_sequences": 2})
    w.send({"op": "batch", "ids": [5, 6, 7], "requests": [{"prompt": [1], "max_new_tokens": 2}] * 3})
    w.wait(lambda evs: w.ended(5))
    ev = w.ended(5)
    assert ev["ev"] == "error" and ev["ids"] == [5, 6, 7] and "at most 2" in ev["error"]
    w.send({"op": "batch", "ids": [8, 9], "requests": [{"prompt": [1], "max_new_tokens": 2}, {"prompt": [], "max_new_tokens": 2}]})
    w.wait(lambda evs: w.ended(8))
    assert w.ended(8)["ids"] == [8, 9] and "prompt is empty" in w.ended(8)["error"]
    assert not any(e["ev"] == "tokens" for e in w.channel.events)
    w.close()


def test_protocol_one_at_a_time_without_ids():
    # A single-stream adapter and an id-less lmdrive: events carry no id, and
    # a cancel without one cancels what runs.
    w = Worker({"step_s": 0.001})
    assert w.channel.events[0]["info"]["max_sequences"] == 1
    w.send({"op": "generate", "request": {"prompt": [1], "max_new_tokens": 1 << 20}})
    w.wait(lambda evs: any(e["ev"] == "tokens" for e in evs))
    w.send({"op": "cancel"})
    w.wait(lambda evs: any(e["ev"] == "result" for e in evs))
    assert all("id" not in e for e in w.channel.events)
    assert [e for e in w.channel.events if e["ev"] == "result"][0]["result"]["finish"] == "cancelled"
    w.close()


def test_protocol_close_cancels_what_runs():
    w = Worker({"max_sequences": 2})
    w.send({"op": "generate", "id": 1, "request": {"prompt": [1], "max_new_tokens": 1 << 20}})
    w.wait(lambda evs: any(e["ev"] == "tokens" for e in evs))
    t0 = time.monotonic()
    w.close()
    assert not w.thread.is_alive() and time.monotonic() - t0 < 5
    assert w.ended(1)["result"]["finish"] == "cancelled"
