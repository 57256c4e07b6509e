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
"""
import os

from .common import EngineError, check_version, now_ns, require, result, take_config
from .library_common import calibrate, check_prompt, folder_facts, model_folder, ns, stop_sequence_hit, versions

KEYS = ("model", "tp", "seed", "dtype", "max_model_len", "enable_prefix_caching", "gpu_memory_utilization",
        "enforce_eager", "trust_remote_code", "skip_tokenizer_init", "engine_core_process", "calibrate")
LOWEST = "0.10.2"
CALIBRATE_VOCAB = 151936
FINISHED_STATES = ("stop", "length", "abort", "error", "repetition")


class VLLMAdapter:
    def __init__(self, config):
        self.cfg = take_config(config, KEYS, "vllm")
        self.calibrate = bool(self.cfg.get("calibrate"))
        self.llm = None
        self.n_requests = 0

    def open(self):
        if self.calibrate:
            self.eos_ids, self.vocab, self.max_model_len = [151645, 151643], CALIBRATE_VOCAB, 1 << 30
            return {"backend": "vllm", "version": "calibrate (no library)", "model": "calibrate", "dtype": "none",
                    "vocab_size": self.vocab, "eos_ids": self.eos_ids, "versions": versions(),
                    "effective_config": {"calibrate": True, "what": "the adapter's output handling fed "
                                         "library-shaped outputs, one token a step, without vLLM"}}
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
        for k in ("seed", "gpu_memory_utilization", "enforce_eager"):
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
        effective = dict(kw)
        effective.update({"max_model_len_effective": self.max_model_len,
                          "VLLM_ENABLE_V1_MULTIPROCESSING": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "unset"),
                          "vllm_max_tokens_default": 16, "watched_logprobs": self.watch_supported})
        return {"backend": "vllm", "version": vllm.__version__, "model": path, "dtype": kw["dtype"],
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
        check_prompt(req, self.vocab)
        sp = self.sampling_params(req)
        self.n_requests += 1
        rid = "lmdrive-%d" % self.n_requests
        submit = now_ns()
        try:
            self.engine.add_request(rid, self.TokensPrompt(prompt_token_ids=list(req.prompt)), sp)
        except Exception as e:  # noqa: BLE001 - vLLM refuses e.g. a prompt that does not fit max_model_len
            raise EngineError("engine vllm refused the request: %s" % " ".join(str(e).split())[:400])
        state = {"final": None, "ours": None, "stop_sequence": -1}
        while state["final"] is None:
            if cancel.is_set() and state["ours"] is None:
                state["ours"] = "cancelled"
                self.engine.abort_request([rid])
            outs = self.engine.step()
            t = now_ns()
            for out in outs:
                if out.request_id != rid:
                    continue
                self._consume(out, req, sink, t)
                if state["ours"] is None:
                    hit = stop_sequence_hit(sink.ids, req)
                    if hit >= 0:
                        state["ours"], state["stop_sequence"] = "stop", hit
                        self.engine.abort_request([rid])
                if out.finished:
                    state["final"] = out
            if state["final"] is None and not self.engine.has_unfinished_requests():
                break
        return self._result(req, sink, state, submit, now_ns(), sp)

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
        self.llm = None


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
