"""A fake of vLLM's offline API at 0.11 (V1 engine): exactly what the
adapter uses, with vLLM's defaults and traps. Test use only."""
import os
import time

import fakemodel

from .sampling_params import RequestOutputKind, SamplingParams  # noqa: F401

__version__ = os.environ.get("FAKE_VLLM_VERSION", "0.11.0")


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Logprob:
    def __init__(self, logprob):
        self.logprob = logprob


class _Engine:
    def __init__(self, path, max_model_len, prefix_caching, stats, max_num_seqs):
        self.cfg, self.gen, self.script = fakemodel.load(path)
        self.model_config = _Obj(max_model_len=max_model_len)
        self.vllm_config = _Obj(model_config=self.model_config, scheduler_config=_Obj(
            max_num_seqs=max_num_seqs, max_num_batched_tokens=8192, chunked_prefill_enabled=True))
        self.steps = 0
        self.widest = 0  # the most requests one step served
        self.prefix_caching, self.stats = prefix_caching, stats
        self.requests = {}
        self.seen_prompts = set()

    def add_request(self, request_id, prompt, params):
        ids = list(prompt["prompt_token_ids"])
        if len(ids) >= self.model_config.max_model_len:
            raise ValueError("The decoder prompt (length %d) is longer than the maximum model length of %d." % (
                len(ids), self.model_config.max_model_len))
        eos = fakemodel.eos_ids(self.cfg, {}) if params.ignore_eos else fakemodel.eos_ids(self.cfg, self.gen)
        cached = len(ids) // 16 * 16 if self.prefix_caching and tuple(ids) in self.seen_prompts else 0
        self.seen_prompts.add(tuple(ids))
        self.requests[request_id] = {"prompt": ids, "params": params, "out": [], "eos": eos, "aborted": False,
                                     "arrival": time.monotonic(), "first": None, "cached": cached}

    def abort_request(self, ids):
        for i in ids:
            if i in self.requests:
                self.requests[i]["aborted"] = True

    def has_unfinished_requests(self):
        return bool(self.requests)

    def step(self):
        # The scheduler: at most max_num_seqs requests a step, first come first.
        if self.script.get("step_ms"):
            time.sleep(self.script["step_ms"] / 1000.0)
        self.steps += 1
        outs = []
        batch = list(self.requests.items())[:self.vllm_config.scheduler_config.max_num_seqs]
        self.widest = max(self.widest, len(batch))
        for rid, r in batch:
            p, new, finish, stop_reason = r["params"], [], None, None
            if r["aborted"]:
                finish = "abort"
            for _ in range(self.script.get("tokens_per_step", 1)):
                if finish:
                    break
                tok = fakemodel.token(self.script, r["prompt"], len(r["out"]))
                r["out"].append(tok)
                new.append(tok)
                n = len(r["out"])
                # check_stop: only the primary EOS is skipped under ignore_eos;
                # stop_token_ids always apply (after min_tokens).
                if n >= p.min_tokens and not p.ignore_eos and tok in r["eos"]:
                    finish = "stop"
                elif n >= p.min_tokens and tok in (p.stop_token_ids or []):
                    finish, stop_reason = "stop", tok
                elif n >= p.max_tokens or len(r["prompt"]) + n >= self.model_config.max_model_len:
                    finish = "length"
            now = time.monotonic()
            if new and r["first"] is None:
                r["first"] = now
            ids = new if p.output_kind == RequestOutputKind.DELTA else list(r["out"])
            lps = [{t: Logprob(-0.25)} for t in ids] if p.logprobs is not None else None
            metrics = None
            if self.stats:
                metrics = _Obj(arrival_time=time.time(), first_token_ts=r["first"] or now, last_token_ts=now)
            outs.append(_Obj(request_id=rid, finished=finish is not None, metrics=metrics if finish else None,
                             num_cached_tokens=r["cached"],
                             outputs=[_Obj(token_ids=ids, logprobs=lps, finish_reason=finish, stop_reason=stop_reason)]))
            if finish:
                del self.requests[rid]
        return outs


class LLM:
    def __init__(self, model, tensor_parallel_size=1, dtype="auto", seed=None, trust_remote_code=False,
                 max_model_len=None, enable_prefix_caching=True, disable_log_stats=True, skip_tokenizer_init=False,
                 gpu_memory_utilization=0.9, enforce_eager=False, max_num_seqs=None):
        cfg, _, _ = fakemodel.load(model)
        if not skip_tokenizer_init and not os.path.exists(os.path.join(model, "tokenizer.json")):
            raise OSError("Can't load tokenizer for '%s'" % model)
        # max_num_seqs: the LLM class's default on a GPU is 256.
        self.llm_engine = _Engine(model, max_model_len or cfg["max_position_embeddings"], enable_prefix_caching,
                                  not disable_log_stats, max_num_seqs or 256)
