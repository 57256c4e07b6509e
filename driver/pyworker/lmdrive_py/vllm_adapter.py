"""Engine `vllm`: vLLM's offline engine (the LLM class), no server.

Written against vLLM 0.10.2 and later (V1 engine; prompts only as
TokensPrompt since the prompt_token_ids keyword was removed). Each request
is added to the LLM's engine and stepped; every step's new tokens are
stamped when step() returns them (DELTA outputs), so several tokens of one
step form one bundle.

Traps handled (research notes and docs/engines.md): max_tokens defaults to
16, so it is always passed; max_model_len is always passed explicitly and a
length cap by it, which vLLM reports as "length", is reported as "limit"
with its source; prefix caching (on by default in V1) is off unless asked;
RequestOutput.metrics exists only with disable_log_stats=False; caller
stop_token_ids still stop under ignore_eos.

Several requests at once: one thread steps the engine (the stepper); each
request is added between two steps and every step's outputs are handed to
their requests, so vLLM's scheduler batches them (continuous batching, and
chunked prefill where its scheduler does it). max_sequences is the
scheduler's max_num_seqs, read back after loading ("max_num_seqs" in the
engine config sets it).
"""
import os
import threading

from .common import EngineError, check_version, now_ns, require, result, take_config
from .library_common import (batch_info, calibrate, calibrate_info, check_prompt, folder_facts, model_folder, ns,
                             stop_sequence_hit, thread_futures, versions)

KEYS = ("model", "tp", "seed", "dtype", "max_model_len", "enable_prefix_caching", "gpu_memory_utilization",
        "enforce_eager", "trust_remote_code", "skip_tokenizer_init", "engine_core_process", "max_num_seqs",
        "calibrate")
LOWEST = "0.10.2"
CALIBRATE_VOCAB = 151936
FINISHED_STATES = ("stop", "length", "abort", "error", "repetition")


class VLLMAdapter:
    def __init__(self, config):
        self.cfg = take_config(config, KEYS, "vllm")
        self.calibrate = bool(self.cfg.get("calibrate"))
        self.llm = None
        self.n_requests = 0
        self.ids_lock = threading.Lock()
        self.stepper = None
        self.max_sequences = 1

    def open(self):
        if self.calibrate:
            self.eos_ids, self.vocab, self.max_model_len = [151645, 151643], CALIBRATE_VOCAB, 1 << 30
            self.max_sequences = int(self.cfg.get("max_num_seqs") or 1)
            return calibrate_info("vllm", self.max_sequences, self.vocab, self.eos_ids,
                                  "the adapter's output handling fed library-shaped outputs, one token a step, "
                                  "without vLLM")
        cfg = self.cfg
        path = model_folder(str(cfg.get("model") or ""), "vllm", bool(cfg.get("trust_remote_code")))
        facts = folder_facts(path)
        tp = int(cfg.get("tp") or 1)
        # EngineCore in this process (no IPC between the step and our stamp)
        # unless asked; tensor parallelism starts its own workers anyway.
        if not cfg.get("engine_core_process"):
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = require("vllm", "vllm", "vLLM")
        check_version("vllm", vllm.__version__, LOWEST)
        self.vllm = vllm
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind
        self.TokensPrompt, self.DELTA = TokensPrompt, RequestOutputKind.DELTA
        max_model_len = int(cfg.get("max_model_len") or facts["max_position_embeddings"] or 0)
        if max_model_len <= 0:
            raise EngineError("engine vllm: %s/config.json has no max_position_embeddings; "
                              "give --engine-config '{\"max_model_len\": N}'" % path)
        kw = {"model": path, "tensor_parallel_size": tp, "max_model_len": max_model_len,
              "enable_prefix_caching": bool(cfg.get("enable_prefix_caching", False)),
              "disable_log_stats": False, "trust_remote_code": bool(cfg.get("trust_remote_code", False)),
              "skip_tokenizer_init": bool(cfg.get("skip_tokenizer_init", True)), "dtype": str(cfg.get("dtype") or "auto")}
        for k in ("seed", "gpu_memory_utilization", "enforce_eager", "max_num_seqs"):
            if k in cfg:
                kw[k] = cfg[k]
        try:
            self.llm = vllm.LLM(**kw)
        except Exception as e:  # noqa: BLE001 - the library's own reason, on one line
            raise EngineError("engine vllm: vLLM %s cannot load %s: %s" % (vllm.__version__, path, " ".join(str(e).split())[:400]))
        self.engine = self.llm.llm_engine
        mc = getattr(self.engine, "model_config", None)
        self.max_model_len = int(getattr(mc, "max_model_len", max_model_len) or max_model_len)
        self.vocab = int(facts["vocab_size"] or 0)
        self.eos_ids = facts["eos_ids"]
        self.watch_supported = _has_field(vllm.SamplingParams, "logprob_token_ids")
        sched = getattr(getattr(self.engine, "vllm_config", None), "scheduler_config", None)
        self.max_sequences = int(getattr(sched, "max_num_seqs", None) or 1)
        chunked = bool(getattr(sched, "chunked_prefill_enabled", False))
        step_tokens = int(getattr(sched, "max_num_batched_tokens", None) or 0)
        self.stepper = _Stepper(self)
        effective = dict(kw)
        effective.update({"max_num_seqs_effective": self.max_sequences if sched is not None else "unknown (one request at a time)",
                          "chunked_prefill": chunked, "max_num_batched_tokens": step_tokens,
                          "max_model_len_effective": self.max_model_len,
                          "VLLM_ENABLE_V1_MULTIPROCESSING": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "unset"),
                          "vllm_max_tokens_default": 16, "watched_logprobs": self.watch_supported})
        return {**batch_info(self.max_sequences, True, chunked, step_tokens), "backend": "vllm", "version": vllm.__version__, "model": path, "dtype": kw["dtype"],
                "vocab_size": self.vocab, "tp_size": tp, "eos_ids": self.eos_ids, "max_seq_len": self.max_model_len,
                "max_input_len": self.max_model_len - 1, "caps": ["logprobs", "sampling"] + (["watch"] if self.watch_supported else []),
                "versions": versions("vllm", "torch", "transformers"), "effective_config": effective}

    def sampling_params(self, req):
        kw = {"max_tokens": req.max_new, "min_tokens": req.min_new, "ignore_eos": req.ignore_eos,
              "temperature": req.temperature, "stop_token_ids": req.single_stop_ids(),
              "output_kind": self.DELTA, "detokenize": False}
        if not req.greedy:
            if req.top_k > 0:
                kw["top_k"] = req.top_k
            if 0 < req.top_p < 1:
                kw["top_p"] = req.top_p
            kw["seed"] = req.seed
        if req.want_logprobs:
            kw["logprobs"] = 0
            if req.watch_ids and self.watch_supported:
                kw["logprob_token_ids"] = list(req.watch_ids)
        return self.vllm.SamplingParams(**kw)

    def generate(self, req, sink, cancel):
        if self.calibrate:
            return calibrate(req, sink, cancel, lambda out: self._consume(out, req, sink, now_ns()), self.vocab,
                             self.eos_ids, _calibration_output)
        return self.start_batch([(req, sink, cancel)])[0].result()

    def start_batch(self, items):
        """Adds every request before the same engine step; a future each."""
        if self.calibrate:
            return thread_futures([lambda i=i: self.generate(*i) for i in items])
        runs = []
        for req, sink, cancel in items:  # every request checked before any is added
            check_prompt(req, self.vocab)
            runs.append(_Run(req, sink, cancel, self.sampling_params(req)))
        with self.ids_lock:
            for r in runs:
                self.n_requests += 1
                r.rid = "lmdrive-%d" % self.n_requests
        self.stepper.add(runs)
        return [r.future for r in runs]

    def _step_outputs(self, run, outs, t):
        """One step's output for one request: its tokens, our stop rule."""
        for out in outs:
            self._consume(out, run.req, run.sink, t)
            if run.ours is None:
                hit = stop_sequence_hit(run.sink.ids, run.req)
                if hit >= 0:
                    run.ours, run.stop_sequence = "stop", hit
                    run.aborted = True
                    self.engine.abort_request([run.rid])
            if out.finished:
                run.final = out

    def _consume(self, out, req, sink, t):
        c = out.outputs[0]
        ids = list(c.token_ids)
        if not ids:
            return
        lps = watched = None
        if req.want_logprobs:
            lps, watched = [], []
            for i, tok in zip(range(len(ids)), ids):
                d = c.logprobs[i] if c.logprobs is not None and i < len(c.logprobs) else {}
                lps.append(_lp(d.get(tok)))
                watched.append([_lp(d.get(w)) for w in req.watch_ids])
            if not req.watch_ids:
                watched = None
        sink.emit(ids, t, lps, watched)

    def _result(self, req, sink, state, submit, done, sp):
        out = state["final"]
        n = sink.count
        c = out.outputs[0] if out is not None else None
        raw = getattr(c, "finish_reason", None) if c is not None else None
        stop_reason = getattr(c, "stop_reason", None) if c is not None else None
        kw = {"raw_status_text": "finish_reason=%s stop_reason=%s" % (raw, stop_reason)}
        budget = min(req.max_new, self.max_model_len - len(req.prompt))
        if budget < req.max_new:
            kw["max_new_effective"] = budget
            kw["limit_source"] = "max_model_len=%d (engine)" % self.max_model_len
        last = sink.ids[-1] if sink.ids else -1
        if state["ours"] == "cancelled":
            finish = "cancelled"
        elif state["ours"] == "stop":
            finish, kw["stop_sequence"], kw["stop_token"] = "stop", state["stop_sequence"], last
        elif raw == "stop" and stop_reason is None:
            finish, kw["stop_token"] = "eos", last
        elif raw == "stop":
            finish, kw["stop_token"] = "stop", last
            singles = [i for i, s in enumerate(req.stop_sequences) if len(s) == 1 and s[0] == stop_reason]
            kw["stop_sequence"] = singles[0] if singles else -1
        elif raw == "length" and n < req.max_new:
            # vLLM says "length" for a max_model_len cap too (FINISHED_LENGTH_CAPPED).
            finish = "limit"
            kw.setdefault("limit_source", "max_model_len=%d (engine)" % self.max_model_len)
            kw["max_new_effective"] = n
        elif raw == "length":
            finish = "length"
        elif raw == "abort":
            finish = "cancelled"
        else:
            finish = "error"
            kw["detail"] = "vLLM finish_reason %s" % raw
        metrics = _metrics(getattr(out, "metrics", None)) if out is not None else {}
        if "first_token_ts" in metrics:
            kw["engine_first_ns"] = int(metrics["first_token_ts"] * 1e9)
        if "last_token_ts" in metrics:
            kw["engine_last_ns"] = int(metrics["last_token_ts"] * 1e9)
        kw["cached_prompt_tokens"] = int(getattr(out, "num_cached_tokens", 0) or 0) if out is not None else 0
        stop_ids = sorted(set(([] if req.ignore_eos else self.eos_ids) + list(getattr(sp, "stop_token_ids", None) or [])))
        effective = {"max_tokens": getattr(sp, "max_tokens", None), "min_tokens": getattr(sp, "min_tokens", None),
                     "ignore_eos": getattr(sp, "ignore_eos", None), "temperature": getattr(sp, "temperature", None),
                     "stop_token_ids": list(getattr(sp, "stop_token_ids", None) or []), "request_metrics": metrics}
        return result(req, finish, n, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=done,
                      max_new_requested=int(getattr(sp, "max_tokens", req.max_new) or req.max_new),
                      ignore_eos_applied=bool(getattr(sp, "ignore_eos", False)), stop_ids=stop_ids,
                      effective_config=effective, **kw)

    def close(self):
        if self.stepper is not None:
            self.stepper.close()
        self.llm = None


class _Run:
    """One request on the stepper."""

    def __init__(self, req, sink, cancel, sp):
        import concurrent.futures
        self.req, self.sink, self.cancel, self.sp = req, sink, cancel, sp
        self.rid = ""
        self.future = concurrent.futures.Future()
        self.final = None
        self.ours = None
        self.stop_sequence = -1
        self.submit = -1
        self.aborted = False  # we aborted it: vLLM may send no final output

    def state(self):
        return {"final": self.final, "ours": self.ours, "stop_sequence": self.stop_sequence}


class _Stepper:
    """The one thread that steps the engine: it adds the requests handed to
    it between two steps (a batch all at once), aborts the cancelled ones,
    steps while any is unfinished and hands each output to its request.
    A request vLLM refuses fails alone; a failing step fails the requests
    in that step, and the engine goes on with new ones."""

    def __init__(self, adapter):
        self.a = adapter
        self.cv = threading.Condition()
        self.pending = []
        self.live = {}
        self.closed = False
        self.thread = threading.Thread(target=self.loop, name="lmdrive-vllm-stepper", daemon=True)
        self.thread.start()

    def add(self, runs):
        with self.cv:
            if self.closed:
                raise EngineError("engine vllm is closed")
            self.pending.extend(runs)
            self.cv.notify()

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify()
        self.thread.join(10)

    def loop(self):
        a = self.a
        while True:
            with self.cv:
                while not self.pending and not self.live and not self.closed:
                    self.cv.wait()
                if self.closed:
                    for r in self.pending + list(self.live.values()):
                        r.future.set_exception(EngineError("engine vllm closed while the request ran"))
                    self.pending, self.live = [], {}
                    return
                adds, self.pending = self.pending, []
            for r in adds:
                r.submit = now_ns()
                try:
                    a.engine.add_request(r.rid, a.TokensPrompt(prompt_token_ids=list(r.req.prompt)), r.sp)
                except Exception as e:  # noqa: BLE001 - vLLM refuses e.g. a prompt that does not fit max_model_len
                    r.future.set_exception(EngineError("engine vllm refused the request: %s" % " ".join(str(e).split())[:400]))
                    continue
                self.live[r.rid] = r
            for r in self.live.values():
                if r.cancel.is_set() and r.ours is None:
                    r.ours, r.aborted = "cancelled", True
                    a.engine.abort_request([r.rid])
            if not self.live:
                continue
            try:
                outs = a.engine.step()
            except Exception as e:  # noqa: BLE001 - the step's requests fail; the stepper goes on
                msg = "engine vllm failed in a step: %s" % " ".join(str(e).split())[:400]
                for r in self.live.values():
                    r.future.set_exception(EngineError(msg))
                self.live = {}
                continue
            t = now_ns()
            by_run = {}
            for out in outs:
                if out.request_id in self.live:
                    by_run.setdefault(out.request_id, []).append(out)
            for rid, rs in by_run.items():
                r = self.live[rid]
                try:
                    a._step_outputs(r, rs, t)
                except Exception as e:  # noqa: BLE001 - one request's bug fails that request
                    r.future.set_exception(e)
                    del self.live[rid]
                    a.engine.abort_request([rid])
            # A request ends with its final output, or after the step that
            # followed our abort of it (vLLM sends nothing more for it).
            ended = [r for r in self.live.values() if r.final is not None or r.aborted]
            if not a.engine.has_unfinished_requests():
                ended = list(self.live.values())
            for r in ended:
                del self.live[r.rid]
                try:
                    r.future.set_result(a._result(r.req, r.sink, r.state(), r.submit, now_ns(), r.sp))
                except Exception as e:  # noqa: BLE001
                    r.future.set_exception(e)


def _calibration_output(tok):
    return ns(request_id="calibrate", finished=False,
              outputs=[ns(token_ids=[tok], logprobs=None, finish_reason=None, stop_reason=None)])


def _lp(x):
    if x is None:
        return float("nan")
    return float(getattr(x, "logprob", x))


def _has_field(cls, name):
    fields = getattr(cls, "__struct_fields__", None)
    if fields is not None:
        return name in fields
    try:
        import inspect
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _metrics(m):
    """RequestOutput.metrics as plain numbers (its *_ts fields are
    time.monotonic() seconds: CLOCK_MONOTONIC, the clock of our stamps)."""
    if m is None:
        return {}
    out = {}
    for k in dir(m):
        if k.startswith("_"):
            continue
        v = getattr(m, k, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
    return out
