"""Engine `trtllm-py`: TensorRT-LLM's LLM API (tensorrt_llm.LLM), streaming,
no server. For TensorRT-LLM 1.4 and later, which dropped the C++ Executor
the native `trtllm` shim uses.

Written against TensorRT-LLM 1.0 and later: generate_async(..., streaming=
True) yields one output per step; outputs[0].token_ids_diff holds the new
tokens, stamped when the output arrives (one bundle each).

Traps handled: SamplingParams.max_tokens defaults to 32, so it is always
passed; max_seq_len is passed explicitly (default: the model's
max_position_embeddings) and a request clamped by it, which TensorRT-LLM
only logs and then reports as "length", is reported as "limit"; end_id is
one id (the first of the model's EOS list), so the other EOS ids do not
stop it, which the result's stop_ids show; ignore_eos sends end_id=-1 and
drops the caller's stop ids too, which the result shows as well; KV-cache
block reuse is off; return_perf_metrics puts the engine's own first/last
token times (steady clock: CLOCK_MONOTONIC) next to ours.

Several requests at once: every request's stream is a task on one event
loop thread (LoopThread), so the in-flight batching scheduler batches them
(a request joins between steps). max_sequences is the LLM's max_batch_size,
read back from its arguments after loading ("max_batch_size",
"max_num_tokens" and "enable_chunked_prefill" in the engine config set
them); where it cannot be read, one request at a time.
"""

from .common import EngineError, check_version, require, result, take_config
from .library_common import (LoopStreams, LoopThread, batch_info, calibrate_info, check_prompt, folder_facts,
                             model_folder, ns, versions)

KEYS = ("model", "tp", "max_seq_len", "free_gpu_memory_fraction", "enable_block_reuse", "dtype", "backend",
        "trust_remote_code", "max_batch_size", "max_num_tokens", "enable_chunked_prefill", "calibrate")
LOWEST = "1.0"
CALIBRATE_VOCAB = 151936


class TRTLLMAdapter(LoopStreams):
    def __init__(self, config):
        self.cfg = take_config(config, KEYS, "trtllm-py")
        self.calibrate = bool(self.cfg.get("calibrate"))
        self.llm = None
        self.runner = None
        self.max_sequences = 1

    def open(self):
        if self.calibrate:
            self.eos_ids, self.vocab, self.max_seq_len, self.end_id = [151645, 151643], CALIBRATE_VOCAB, 1 << 30, 151645
            self.max_sequences = int(self.cfg.get("max_batch_size") or 1)
            return calibrate_info("tensorrt_llm", self.max_sequences, self.vocab, [self.end_id],
                                  "the adapter's output handling fed library-shaped outputs, one token a step, "
                                  "without TensorRT-LLM")
        cfg = self.cfg
        path = model_folder(str(cfg.get("model") or ""), "trtllm-py", bool(cfg.get("trust_remote_code")))
        facts = folder_facts(path)
        trt = require("tensorrt_llm", "tensorrt_llm (from NVIDIA's package index: pip install tensorrt_llm "
                      "--extra-index-url https://pypi.nvidia.com)", "TensorRT-LLM")
        check_version("tensorrt_llm", trt.__version__, LOWEST)
        self.trt = trt
        from tensorrt_llm.llmapi import KvCacheConfig
        max_seq_len = int(cfg.get("max_seq_len") or facts["max_position_embeddings"] or 0)
        if max_seq_len <= 0:
            raise EngineError("engine trtllm-py: %s/config.json has no max_position_embeddings; "
                              "give --engine-config '{\"max_seq_len\": N}'" % path)
        kv = {"enable_block_reuse": bool(cfg.get("enable_block_reuse", False))}
        if "free_gpu_memory_fraction" in cfg:
            kv["free_gpu_memory_fraction"] = cfg["free_gpu_memory_fraction"]
        kw = {"model": path, "tensor_parallel_size": int(cfg.get("tp") or 1), "max_seq_len": max_seq_len,
              "kv_cache_config": KvCacheConfig(**kv), "trust_remote_code": bool(cfg.get("trust_remote_code", False)),
              "skip_tokenizer_init": True}
        if "dtype" in cfg:
            kw["dtype"] = cfg["dtype"]
        if "backend" in cfg:
            kw["backend"] = cfg["backend"]
        for k in ("max_batch_size", "max_num_tokens", "enable_chunked_prefill"):
            if k in cfg:
                kw[k] = cfg[k]
        try:
            self.llm = trt.LLM(**kw)
        except Exception as e:  # noqa: BLE001 - the library's own reason, on one line
            raise EngineError("engine trtllm-py: TensorRT-LLM %s cannot load %s: %s" % (trt.__version__, path, " ".join(str(e).split())[:400]))
        self.runner = LoopThread()
        args = getattr(self.llm, "args", None)
        max_batch = getattr(args, "max_batch_size", None)
        self.max_sequences = int(max_batch) if isinstance(max_batch, int) and max_batch > 0 else 1
        chunked = bool(getattr(args, "enable_chunked_prefill", False))
        step_tokens = getattr(args, "max_num_tokens", None)
        step_tokens = int(step_tokens) if isinstance(step_tokens, int) else 0
        self.max_seq_len = int(getattr(args, "max_seq_len", None) or max_seq_len)
        self.eos_ids = facts["eos_ids"]
        if not self.eos_ids:
            raise EngineError("engine trtllm-py: %s names no eos_token_id; TensorRT-LLM needs an end_id" % path)
        self.end_id = self.eos_ids[0]
        self.vocab = int(facts["vocab_size"] or 0)
        self.perf_metrics = _accepts(trt.SamplingParams, "return_perf_metrics")
        effective = {k: v for k, v in kw.items() if k != "kv_cache_config"}
        effective.update({"kv_cache_config": kv, "max_seq_len_effective": self.max_seq_len, "end_id": self.end_id,
                          "eos_ids_not_stopping": self.eos_ids[1:], "trtllm_max_tokens_default": 32,
                          "return_perf_metrics": self.perf_metrics,
                          "max_batch_size_effective": self.max_sequences if isinstance(max_batch, int) else "unknown (one request at a time)",
                          "max_num_tokens_effective": step_tokens, "enable_chunked_prefill_effective": chunked})
        return {**batch_info(self.max_sequences, True, chunked, step_tokens), "backend": "tensorrt_llm", "version": trt.__version__, "model": path, "dtype": str(cfg.get("dtype") or "auto"),
                "vocab_size": self.vocab, "tp_size": kw["tensor_parallel_size"], "eos_ids": [self.end_id],
                "max_seq_len": self.max_seq_len, "max_input_len": self.max_seq_len - 1,
                "caps": ["logprobs", "sampling", "engine_timing"] if self.perf_metrics else ["logprobs", "sampling"],
                "versions": versions("tensorrt_llm", "torch", "tensorrt"), "effective_config": effective}

    def sampling_params(self, req):
        kw = {"max_tokens": req.max_new, "ignore_eos": req.ignore_eos, "end_id": self.end_id,
              "stop_token_ids": req.single_stop_ids() or None, "detokenize": False}
        if req.min_new:
            kw["min_tokens"] = req.min_new
        if req.greedy:
            kw["top_k"] = 1
        else:
            kw.update(temperature=req.temperature, seed=req.seed)
            if req.top_k > 0:
                kw["top_k"] = req.top_k
            if 0 < req.top_p < 1:
                kw["top_p"] = req.top_p
        if req.want_logprobs:
            kw["logprobs"] = 1
        if self.perf_metrics:
            kw["return_perf_metrics"] = True
        return self.trt.SamplingParams(**kw)

    def calibration_eos(self):
        return [self.end_id]

    @staticmethod
    def calibration_output(tok):
        return ns(outputs=[ns(token_ids_diff=[tok], logprobs_diff=None, finish_reason=None, stop_reason=None)])

    def _prepare(self, req):
        check_prompt(req, self.vocab)
        return self.sampling_params(req)

    def _open(self, sp, req):
        handle = self.llm.generate_async(list(req.prompt), sampling_params=sp, streaming=True)
        return handle, handle.abort

    def _consume(self, out, req, sink, t):
        c = out.outputs[0]
        ids = list(getattr(c, "token_ids_diff", None) or [])
        if not ids:
            return
        lps = None
        if req.want_logprobs:
            diff = list(getattr(c, "logprobs_diff", None) or [])
            lps = [_lp(d, tok) for d, tok in zip(diff + [None] * (len(ids) - len(diff)), ids)]
        watched = [[float("nan")] * len(req.watch_ids) for _ in ids] if (req.want_logprobs and req.watch_ids) else None
        sink.emit(ids, t, lps, watched)

    def _result(self, req, sink, state, submit, done, sp):
        out = state["last"]
        c = out.outputs[0] if out is not None else None
        n = sink.count
        raw = getattr(c, "finish_reason", None) if c is not None else None
        stop_reason = getattr(c, "stop_reason", None) if c is not None else None
        requested = int(getattr(sp, "max_tokens", req.max_new) or req.max_new)
        kw = {"raw_status_text": "finish_reason=%s stop_reason=%s" % (raw, stop_reason), "max_new_requested": requested}
        budget = min(requested, self.max_seq_len - len(req.prompt))
        if budget < requested:
            kw["max_new_effective"] = budget
            kw["limit_source"] = "max_seq_len=%d (engine)" % self.max_seq_len
        last = sink.ids[-1] if sink.ids else -1
        # ignore_eos: end_id=-1 and no stop words at all, the caller's included.
        stop_ids = [] if req.ignore_eos else sorted(set([self.end_id] + req.single_stop_ids()))
        if state["ours"] == "cancelled":
            finish = "cancelled"
        elif state["ours"] == "stop":
            finish, kw["stop_sequence"], kw["stop_token"] = "stop", state["stop_sequence"], last
        elif raw == "stop" and last == self.end_id and stop_reason in (None, self.end_id):
            finish, kw["stop_token"] = "eos", last
        elif raw == "stop":
            finish, kw["stop_token"] = "stop", last
            singles = [i for i, s in enumerate(req.stop_sequences) if len(s) == 1 and s[0] == last]
            kw["stop_sequence"] = singles[0] if singles else -1
        elif raw == "length" and n < requested:
            # TensorRT-LLM clamps to max_seq_len with a warning and says "length".
            finish = "limit"
            kw["max_new_effective"] = n
            kw.setdefault("limit_source", "max_seq_len=%d (engine)" % self.max_seq_len)
        elif raw == "length":
            finish = "length"
        elif raw in ("cancelled", "timeout"):
            finish = raw
        else:
            finish = "error"
            kw["detail"] = "TensorRT-LLM finish_reason %s" % raw
        timing = _timing(c)
        if "first_token_time" in timing:
            kw["engine_first_ns"] = timing["first_token_time"]
        if "last_token_time" in timing:
            kw["engine_last_ns"] = timing["last_token_time"]
        effective = {k: getattr(sp, k, None) for k in ("max_tokens", "min_tokens", "ignore_eos", "end_id", "stop_token_ids",
                                                       "temperature", "top_k", "top_p")}
        effective["timing_metrics_ns"] = timing
        if req.ignore_eos and req.single_stop_ids():
            effective["stop_token_ids_under_ignore_eos"] = "dropped by TensorRT-LLM (ignore_eos clears every stop word)"
        return result(req, finish, n, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=done,
                      ignore_eos_applied=bool(getattr(sp, "ignore_eos", False)), stop_ids=stop_ids,
                      effective_config=effective, **kw)

    def close(self):
        if self.llm is not None and hasattr(self.llm, "shutdown"):
            self.llm.shutdown()
        self.llm = None
        if self.runner is not None:
            self.runner.close()


def _accepts(cls, name):
    import inspect
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return hasattr(cls, name)


def _lp(d, tok):
    if d is None:
        return float("nan")
    if isinstance(d, dict):
        v = d.get(tok)
        return float(getattr(v, "logprob", v)) if v is not None else float("nan")
    return float(d)


def _timing(c):
    """request_perf_metrics.timing_metrics as CLOCK_MONOTONIC ns: the
    engine's steady clock, durations since its epoch (timedelta or seconds)."""
    m = getattr(getattr(c, "request_perf_metrics", None), "timing_metrics", None) if c is not None else None
    out = {}
    for k in ("arrival_time", "first_scheduled_time", "first_token_time", "last_token_time"):
        v = getattr(m, k, None) if m is not None else None
        if v is None:
            continue
        secs = v.total_seconds() if hasattr(v, "total_seconds") else float(v)
        if secs > 0:
            out[k] = int(round(secs * 1e9))
    return out

