"""Engine `lmdeploy`: LMDeploy's pipeline with the TurboMind (default) or
PyTorch backend, streaming token IDs, no server.

Written against LMDeploy 0.7.0 and later: the pipeline's generate takes
input_ids (AsyncEngine.generate until 0.11, the Pipeline class from 0.12);
only the keywords the installed generate accepts are passed. Each response
the stream yields is stamped when it arrives; its new tokens form one bundle.

Traps handled: GenerationConfig.max_new_tokens defaults to 512, so a config
is always passed and the value the engine got is read back from it;
session_len is always passed (default: the model's max_position_embeddings,
LMDeploy's own default made explicit) and the effective value is read back
after loading (TurboMind can lower it to what its KV cache holds); with
ignore_eos LMDeploy reports every end as "length", clamps included, so an
end short of max_new_tokens at session_len is reported as "limit". The
pipeline logs at INFO so its "max_new_tokens=" and truncation lines reach
the engine log, where `lmdrive eos` reads them.

Several requests at once: every request's stream is a task on one event
loop thread (LoopThread), so TurboMind or the PyTorch engine batches them
(persistent batching: a request joins between steps). max_batch_size is
always passed (default 128; LMDeploy's own default depends on the GPU) and
is the engine's max_sequences.
"""
import inspect
import itertools

from .common import EngineError, check_version, require, result, take_config
from .library_common import (LoopStreams, LoopThread, batch_info, calibrate_info, check_prompt, folder_facts,
                             model_folder, ns, versions)

KEYS = ("model", "tp", "backend", "session_len", "cache_max_entry_count", "enable_prefix_caching", "dtype",
        "log_level", "trust_remote_code", "max_batch_size", "calibrate")
LOWEST = "0.7.0"
CALIBRATE_VOCAB = 151936
DEFAULT_MAX_BATCH = 128


class LMDeployAdapter(LoopStreams):
    def __init__(self, config):
        self.cfg = take_config(config, KEYS, "lmdeploy")
        self.calibrate = bool(self.cfg.get("calibrate"))
        self.pipe = None
        self.runner = None
        self.sessions = itertools.count(1)  # next() is atomic under the GIL
        self.max_sequences = int(self.cfg.get("max_batch_size") or DEFAULT_MAX_BATCH)

    def open(self):
        if self.calibrate:
            self.eos_ids, self.vocab, self.session_len = [151645, 151643], CALIBRATE_VOCAB, 1 << 30
            self.backend = "turbomind"
            self.max_sequences = int(self.cfg.get("max_batch_size") or 1)
            return calibrate_info("lmdeploy", self.max_sequences, self.vocab, self.eos_ids,
                                  "the adapter's response handling fed library-shaped responses, one token each, "
                                  "without LMDeploy")
        cfg = self.cfg
        path = model_folder(str(cfg.get("model") or ""), "lmdeploy", bool(cfg.get("trust_remote_code")))
        facts = folder_facts(path)
        backend = str(cfg.get("backend") or "turbomind")
        if backend not in ("turbomind", "pytorch"):
            raise EngineError('engine lmdeploy: backend "%s" is not turbomind or pytorch' % backend)
        lmdeploy = require("lmdeploy", "lmdeploy", "LMDeploy")
        check_version("lmdeploy", lmdeploy.__version__, LOWEST)
        self.lmdeploy = lmdeploy
        session_len = int(cfg.get("session_len") or facts["max_position_embeddings"] or 0)
        if session_len <= 0:
            raise EngineError("engine lmdeploy: %s/config.json has no max_position_embeddings; "
                              "give --engine-config '{\"session_len\": N}'" % path)
        bkw = {"tp": int(cfg.get("tp") or 1), "session_len": session_len,
               "enable_prefix_caching": bool(cfg.get("enable_prefix_caching", False)),
               "max_batch_size": self.max_sequences}
        if "cache_max_entry_count" in cfg:
            bkw["cache_max_entry_count"] = cfg["cache_max_entry_count"]
        if "dtype" in cfg:
            bkw["dtype"] = cfg["dtype"]
        Config = lmdeploy.TurbomindEngineConfig if backend == "turbomind" else lmdeploy.PytorchEngineConfig
        backend_config = Config(**bkw)
        log_level = str(cfg.get("log_level") or "INFO")
        try:
            self.pipe = lmdeploy.pipeline(path, backend_config=backend_config, log_level=log_level)
        except Exception as e:  # noqa: BLE001 - the library's own reason, on one line
            raise EngineError("engine lmdeploy: LMDeploy %s cannot load %s: %s" % (lmdeploy.__version__, path, " ".join(str(e).split())[:400]))
        self.runner = LoopThread()
        self.backend = backend
        self.session_len = _effective_session_len(self.pipe, session_len)
        self.vocab = int(facts["vocab_size"] or 0)
        self.eos_ids = facts["eos_ids"]
        self.generate_params = _params(self.pipe.generate)
        effective = dict(bkw, backend=backend, log_level=log_level, trust_remote_code=bool(cfg.get("trust_remote_code")), session_len_requested=session_len,
                         session_len_effective=self.session_len, lmdeploy_max_new_tokens_default=512,
                         generate_keywords=sorted(self.generate_params) if self.generate_params else "any")
        return {**batch_info(self.max_sequences), "backend": "lmdeploy-" + backend, "version": lmdeploy.__version__, "model": path,
                "dtype": str(cfg.get("dtype") or "auto"), "vocab_size": self.vocab, "tp_size": bkw["tp"],
                "eos_ids": self.eos_ids, "max_seq_len": self.session_len, "max_input_len": self.session_len - 1,
                "caps": ["logprobs", "sampling"], "versions": versions("lmdeploy", "torch", "transformers"),
                "effective_config": effective}

    def gen_config(self, req):
        kw = {"max_new_tokens": req.max_new, "min_new_tokens": req.min_new, "ignore_eos": req.ignore_eos,
              "stop_token_ids": req.single_stop_ids() or None, "temperature": req.temperature if not req.greedy else 0.0}
        if req.greedy:
            kw["top_k"] = 1
        else:
            kw["top_k"] = req.top_k
            kw["top_p"] = req.top_p if 0 < req.top_p < 1 else 1.0
            kw["random_seed"] = req.seed
        if req.want_logprobs:
            kw["logprobs"] = 1
        return self.lmdeploy.GenerationConfig(**kw)

    def calibration_eos(self):
        return self.eos_ids

    @staticmethod
    def calibration_output(tok):
        return ns(token_ids=[tok], generate_token_len=None, finish_reason=None, logprobs=None)

    def _prepare(self, req):
        check_prompt(req, self.vocab)
        gc = self.gen_config(req)
        sid = next(self.sessions)
        kw = {"messages": None, "session_id": sid, "gen_config": gc, "input_ids": list(req.prompt),
              "sequence_start": True, "sequence_end": True, "do_preprocess": False, "stream_response": True}
        if self.generate_params is not None:
            kw = {k: v for k, v in kw.items() if k in self.generate_params}
        return kw, sid, gc

    def _open(self, prepared, req):
        kw, sid, _ = prepared
        return self.pipe.generate(**kw), lambda: self.pipe.stop_session(sid)

    def _consume(self, out, req, sink, t):
        ids = list(getattr(out, "token_ids", None) or [])
        total = getattr(out, "generate_token_len", None)
        new = (int(total) - sink.count) if total is not None else len(ids)
        if new <= 0:
            return
        ids = ids[-new:]
        lps = None
        if req.want_logprobs:
            lp = list(getattr(out, "logprobs", None) or [])[-new:]
            lps = [float(d.get(tok, float("nan"))) if isinstance(d, dict) else float("nan")
                   for d, tok in zip(lp + [None] * (len(ids) - len(lp)), ids)]
        watched = [[float("nan")] * len(req.watch_ids) for _ in ids] if (req.want_logprobs and req.watch_ids) else None
        sink.emit(ids, t, lps, watched)

    def _result(self, req, sink, state, submit, done, prepared):
        gc = prepared[2]
        out = state["last"]
        n = sink.count
        raw = getattr(out, "finish_reason", None) if out is not None else None
        requested = int(getattr(gc, "max_new_tokens", req.max_new))
        kw = {"raw_status_text": "finish_reason=%s" % raw, "max_new_requested": requested}
        budget = min(requested, self.session_len - len(req.prompt))
        if budget < requested:
            kw["max_new_effective"] = budget
            kw["limit_source"] = "session_len=%d (effective, read back after loading)" % self.session_len
        last = sink.ids[-1] if sink.ids else -1
        stop_ids = [] if req.ignore_eos and self.backend == "turbomind" else sorted(set(
            ([] if req.ignore_eos else self.eos_ids) + req.single_stop_ids()))
        if state["ours"] == "cancelled":
            finish = "cancelled"
        elif state["ours"] == "stop":
            finish, kw["stop_sequence"], kw["stop_token"] = "stop", state["stop_sequence"], last
        elif raw == "stop" and last in req.single_stop_ids():
            finish, kw["stop_token"] = "stop", last
            kw["stop_sequence"] = [i for i, s in enumerate(req.stop_sequences) if len(s) == 1 and s[0] == last][0]
        elif raw == "stop":
            finish, kw["stop_token"] = "eos", last
        elif raw == "length" and n < requested:
            # LMDeploy says "length" for a session_len cut too: name it.
            finish = "limit"
            kw["max_new_effective"] = n
            if len(req.prompt) + n >= self.session_len - 1:
                kw["limit_source"] = "session_len=%d (effective, read back after loading)" % self.session_len
            else:
                kw["limit_source"] = "LMDeploy ended with finish_reason length after %d tokens" % n
        elif raw == "length":
            finish = "length"
        elif raw == "abort":
            finish = "cancelled"
        else:
            finish = "error"
            kw["detail"] = "LMDeploy finish_reason %s" % raw
        effective = {k: getattr(gc, k, None) for k in ("max_new_tokens", "min_new_tokens", "ignore_eos", "stop_token_ids",
                                                       "temperature", "top_k", "top_p")}
        effective["session_len_effective"] = self.session_len
        if req.ignore_eos:
            effective["stop_ids_under_ignore_eos"] = ("dropped (TurboMind sets stop ids only without ignore_eos)" if self.backend == "turbomind"
                                                     else "moved to bad words: never sampled (PyTorch engine)")
        return result(req, finish, n, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=done,
                      ignore_eos_applied=bool(getattr(gc, "ignore_eos", False)), stop_ids=stop_ids,
                      effective_config=effective, **kw)

    def close(self):
        self.pipe = None
        if self.runner is not None:
            self.runner.close()


def _effective_session_len(pipe, asked):
    for owner in (pipe, getattr(pipe, "backend_config", None), getattr(pipe, "engine", None)):
        v = getattr(owner, "session_len", None) if owner is not None else None
        if isinstance(v, int) and v > 0:
            return v
    return asked


def _params(fn):
    """The keywords fn accepts, or None when it takes **kwargs."""
    try:
        ps = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in ps.values()):
        return None
    return set(ps)
