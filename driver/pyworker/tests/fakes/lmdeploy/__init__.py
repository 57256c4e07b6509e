"""A fake of LMDeploy's pipeline API at 0.9 (AsyncEngine.generate with
input_ids): exactly what the adapter uses, with LMDeploy's defaults and
traps (max_new_tokens 512, session_len clamps, every ignore_eos end called
"length", stop ids dropped under ignore_eos). Test use only."""
import asyncio
import os

import fakemodel

__version__ = os.environ.get("FAKE_LMDEPLOY_VERSION", "0.9.2")


class GenerationConfig:
    def __init__(self, n=1, max_new_tokens=512, do_sample=False, top_p=1.0, top_k=50, temperature=0.8,
                 repetition_penalty=1.0, ignore_eos=False, random_seed=None, stop_token_ids=None, min_new_tokens=None,
                 logprobs=None):
        self.__dict__.update(dict(n=n, max_new_tokens=max_new_tokens, do_sample=do_sample, top_p=top_p, top_k=top_k,
                                  temperature=temperature, repetition_penalty=repetition_penalty, ignore_eos=ignore_eos,
                                  random_seed=random_seed, stop_token_ids=stop_token_ids, min_new_tokens=min_new_tokens,
                                  logprobs=logprobs))


class TurbomindEngineConfig:
    def __init__(self, dtype="auto", tp=1, session_len=None, cache_max_entry_count=0.8, enable_prefix_caching=False,
                 max_batch_size=None):
        self.__dict__.update(dict(dtype=dtype, tp=tp, session_len=session_len, cache_max_entry_count=cache_max_entry_count,
                                  enable_prefix_caching=enable_prefix_caching, max_batch_size=max_batch_size))


class PytorchEngineConfig(TurbomindEngineConfig):
    pass


class _Response:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class AsyncEngine:
    def __init__(self, path, backend_config, log_level):
        self.cfg, self.gen, self.script = fakemodel.load(path)
        self.backend_config = backend_config or TurbomindEngineConfig()
        self.turbomind = not isinstance(self.backend_config, PytorchEngineConfig)
        self.info = log_level == "INFO"
        if self.backend_config.session_len is None:
            self.backend_config.session_len = self.cfg["max_position_embeddings"]
        kv = self.script.get("kv_session_len")
        if kv and kv < self.backend_config.session_len:
            fakemodel.log("[TM][WARNING] session_len truncated to %d due to limited KV cache memory" % kv)
            self.backend_config.session_len = kv
        self.session_len = self.backend_config.session_len
        self.stopped = set()
        self.running = 0
        self.widest = 0  # the most sessions generating at once

    async def stop_session(self, session_id):
        self.stopped.add(session_id)

    async def generate(self, messages, session_id, gen_config=None, stream_response=True, sequence_start=True,
                       sequence_end=True, step=0, do_preprocess=True, input_ids=None):
        gc = gen_config or GenerationConfig()
        prompt = list(input_ids)
        max_new = gc.max_new_tokens
        if self.info:
            fakemodel.log("[INFO] session=%d, input_tokens=%d, max_new_tokens=%d" % (session_id, len(prompt), max_new))
        if len(prompt) + max_new > self.session_len:
            k = self.session_len - len(prompt)
            fakemodel.log("[TM][WARNING] total sequence length (%d + %d) exceeds session_len (%d), max_new_tokens is truncated to %d"
                          % (len(prompt), max_new, self.session_len, k))
            max_new = k
        stops = []
        if not gc.ignore_eos or not self.turbomind:
            stops = list(gc.stop_token_ids or []) + fakemodel.eos_ids(self.cfg, self.gen)
        banned = stops if gc.ignore_eos else []  # PyTorch engine: stop words become bad words
        out = []
        self.running += 1
        self.widest = max(self.widest, self.running)
        try:
            async for r in self._tokens(session_id, gc, prompt, max_new, stops, banned, out):
                yield r
        finally:
            self.running -= 1

    async def _tokens(self, session_id, gc, prompt, max_new, stops, banned, out):
        while True:
            await asyncio.sleep(self.script.get("step_ms", 0) / 1000.0)
            if session_id in self.stopped:
                yield _Response(token_ids=[], generate_token_len=len(out), finish_reason="abort", logprobs=None)
                return
            step_n = len(out)
            tok = fakemodel.token(self.script, prompt, step_n)
            while tok in banned:
                tok += 1
            out.append(tok)
            done = None
            if len(out) >= (gc.min_new_tokens or 0) and not gc.ignore_eos and tok in stops:
                done = "stop"
            elif len(out) >= max_new:
                done = "length"
            yield _Response(token_ids=[tok], generate_token_len=len(out), finish_reason=done,
                            logprobs=[{tok: -0.5}] if gc.logprobs else None)
            if done:
                return


def pipeline(model_path, backend_config=None, chat_template_config=None, log_level="WARNING"):
    return AsyncEngine(model_path, backend_config, log_level)
