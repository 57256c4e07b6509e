"""A fake of TensorRT-LLM's LLM API at 1.0: exactly what the adapter uses,
with its defaults and traps (max_tokens 32, one end_id, ignore_eos dropping
every stop word, max_seq_len clamps logged and reported as "length").
Test use only."""
import asyncio
import datetime
import os
import time

import fakemodel

__version__ = os.environ.get("FAKE_TRTLLM_VERSION", "1.0.0")


class SamplingParams:
    def __init__(self, end_id=None, pad_id=None, max_tokens=32, temperature=None, top_k=None, top_p=None, seed=None,
                 ignore_eos=False, min_tokens=None, stop_token_ids=None, detokenize=True, logprobs=None,
                 return_perf_metrics=False):
        self.__dict__.update(dict(end_id=end_id, pad_id=pad_id, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                  top_p=top_p, seed=seed, ignore_eos=ignore_eos, min_tokens=min_tokens,
                                  stop_token_ids=stop_token_ids, detokenize=detokenize, logprobs=logprobs,
                                  return_perf_metrics=return_perf_metrics))


class _O:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _Stream:
    def __init__(self, llm, ids, sp):
        self.llm, self.ids, self.sp, self.aborted = llm, ids, sp, False

    def abort(self):
        self.aborted = True

    async def _gen(self):
        sp, llm = self.sp, self.llm
        max_tokens = sp.max_tokens
        if len(self.ids) + max_tokens > llm.args.max_seq_len:
            k = llm.args.max_seq_len - len(self.ids)
            fakemodel.log("[TRT-LLM] [W] Number of requested output tokens (%d) exceeds maximum sequence length (%d). "
                          "Number of requested output tokens is changed to (%d)." % (max_tokens, llm.args.max_seq_len, k))
            max_tokens = k
        end_id = -1 if sp.ignore_eos else sp.end_id
        stop_words = [] if sp.ignore_eos else list(sp.stop_token_ids or [])
        arrival, first, out = time.monotonic(), None, []
        while True:
            await asyncio.sleep(llm.script.get("step_ms", 0) / 1000.0)
            if self.aborted:
                yield self._out([], "cancelled", None, arrival, first)
                return
            tok = fakemodel.token(llm.script, self.ids, len(out))
            out.append(tok)
            first = first or time.monotonic()
            n, finish, reason = len(out), None, None
            if n >= (sp.min_tokens or 0) and tok == end_id:
                finish = "stop"
            elif n >= (sp.min_tokens or 0) and tok in stop_words:
                finish, reason = "stop", tok
            elif n >= max_tokens:
                finish = "length"
            yield self._out([tok], finish, reason, arrival, first)
            if finish:
                return

    def _out(self, diff, finish, reason, arrival, first):
        perf = None
        if self.sp.return_perf_metrics:
            td = lambda s: datetime.timedelta(seconds=s)  # noqa: E731 - steady clock as a duration since its epoch
            perf = _O(timing_metrics=_O(arrival_time=td(arrival), first_scheduled_time=td(arrival),
                                        first_token_time=td(first or arrival), last_token_time=td(time.monotonic())))
        lp = [{t: -0.75} for t in diff] if self.sp.logprobs else None
        return _O(outputs=[_O(token_ids_diff=diff, logprobs_diff=lp, finish_reason=finish, stop_reason=reason,
                              request_perf_metrics=perf)])

    async def _tracked(self):
        self.llm.running += 1
        self.llm.widest = max(self.llm.widest, self.llm.running)
        try:
            async for out in self._gen():
                yield out
        finally:
            self.llm.running -= 1

    def __aiter__(self):
        return self._tracked()


class LLM:
    def __init__(self, model, tokenizer=None, skip_tokenizer_init=False, tensor_parallel_size=1, max_seq_len=None,
                 kv_cache_config=None, trust_remote_code=False, dtype="auto", backend=None, max_batch_size=2048,
                 max_num_tokens=8192, enable_chunked_prefill=False):
        self.cfg, self.gen, self.script = fakemodel.load(model)
        self.skip_tokenizer_init = skip_tokenizer_init
        self.args = _O(max_seq_len=max_seq_len or self.cfg["max_position_embeddings"], kv_cache_config=kv_cache_config,
                       max_batch_size=max_batch_size, max_num_tokens=max_num_tokens,
                       enable_chunked_prefill=enable_chunked_prefill)
        self.running = 0
        self.widest = 0  # the most streams generating at once

    def generate_async(self, inputs, sampling_params=None, streaming=False):
        sp = sampling_params or SamplingParams()
        if sp.end_id is None:
            if self.skip_tokenizer_init:
                raise ValueError("end_id must be set when the tokenizer is skipped")
            sp.end_id = self.cfg.get("eos_token_id")
        return _Stream(self, list(inputs), sp)

    def shutdown(self):
        pass
