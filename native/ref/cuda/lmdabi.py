"""Minimal ctypes client of the lmdrive C ABI (native/include/lmdrive.h) for
the GPU check scripts: create an engine, run one greedy generation, read the
tokens, their logprobs and the result; and the ref engine's lmdrive_ref_logits
debug entry point. Needs numpy only (no torch), so it can run in a process
without PyTorch's CUDA libraries."""
import ctypes
import json
import time

import numpy as np

c_u32, c_i32, c_i64, c_u64, c_f32 = (ctypes.c_uint32, ctypes.c_int32, ctypes.c_int64,
                                     ctypes.c_uint64, ctypes.c_float)


class LmdError(ctypes.Structure):
    _fields_ = [("struct_size", c_u32), ("code", c_i32), ("message", ctypes.c_char * 1016)]


class LmdInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_u32), ("vocab_size", c_u32), ("backend", ctypes.c_char * 32),
                ("version", ctypes.c_char * 64), ("model", ctypes.c_char * 128),
                ("dtype", ctypes.c_char * 16), ("tp_size", c_u32), ("n_devices", c_u32),
                ("device_ids", c_i32 * 16), ("n_eos", c_u32), ("eos_ids", c_i32 * 32),
                ("max_seq_len", c_u32), ("max_input_len", c_u32), ("caps", c_u32),
                ("reserved", c_u32),
                # ABI 1.1
                ("max_sequences", c_u32), ("batch_flags", c_u32), ("max_step_tokens", c_u32),
                ("reserved2", c_u32)]


class LmdRequest(ctypes.Structure):
    _fields_ = [("struct_size", c_u32), ("n_prompt", c_u32), ("prompt", ctypes.POINTER(c_i32)),
                ("max_new_tokens", c_u32), ("min_new_tokens", c_u32), ("ignore_eos", c_u32),
                ("n_stop", c_u32), ("stop_tokens", ctypes.POINTER(c_i32)),
                ("stop_ends", ctypes.POINTER(c_u32)), ("n_watch", c_u32), ("top_k", c_u32),
                ("watch_ids", ctypes.POINTER(c_i32)), ("temperature", c_f32), ("top_p", c_f32),
                ("seed", c_u64), ("want_logprobs", c_u32), ("reserved", c_u32)]


class LmdToken(ctypes.Structure):
    _fields_ = [("id", c_i32), ("index", c_u32), ("t_ns", c_i64), ("logprob", c_f32),
                ("bundle", c_u32)]


class LmdPoll(ctypes.Structure):
    _fields_ = [("struct_size", c_u32), ("n", c_u32), ("done", c_u32), ("reserved", c_u32)]


class LmdResult(ctypes.Structure):
    _fields_ = [("struct_size", c_u32), ("finish_reason", c_i32), ("raw_status", c_i32),
                ("prompt_tokens", c_u32), ("output_tokens", c_u32),
                ("cached_prompt_tokens", c_i32), ("max_new_requested", c_u32),
                ("max_new_effective", c_u32), ("stop_token", c_i32), ("stop_sequence", c_i32),
                ("t_submit_ns", c_i64), ("t_first_ns", c_i64), ("t_last_ns", c_i64),
                ("t_done_ns", c_i64), ("device_prefill_ns", c_i64), ("device_decode_ns", c_i64),
                ("engine_first_ns", c_i64), ("engine_last_ns", c_i64),
                ("ignore_eos_applied", c_u32), ("n_stop_ids", c_u32), ("stop_ids", c_i32 * 32),
                ("raw_status_text", ctypes.c_char * 64), ("limit_source", ctypes.c_char * 128),
                ("detail", ctypes.c_char * 256),
                # ABI 1.1
                ("t_scheduled_ns", c_i64), ("mean_batch", c_f32), ("max_batch", c_u32)]


_P = ctypes.c_void_p
_API_FIELDS = [("struct_size", c_u32), ("abi_major", c_u32), ("abi_minor", c_u32),
               ("reserved", c_u32),
               ("now_ns", ctypes.CFUNCTYPE(c_i64)),
               ("create", ctypes.CFUNCTYPE(c_i32, ctypes.c_char_p, ctypes.POINTER(_P),
                                           ctypes.POINTER(LmdError))),
               ("info", ctypes.CFUNCTYPE(c_i32, _P, ctypes.POINTER(LmdInfo),
                                         ctypes.POINTER(LmdError))),
               ("start", ctypes.CFUNCTYPE(c_i32, _P, ctypes.POINTER(LmdRequest),
                                          ctypes.POINTER(_P), ctypes.POINTER(LmdError))),
               ("poll", ctypes.CFUNCTYPE(c_i32, _P, ctypes.POINTER(LmdToken),
                                         ctypes.POINTER(c_f32), c_u32, c_i64,
                                         ctypes.POINTER(LmdPoll), ctypes.POINTER(LmdError))),
               ("cancel", ctypes.CFUNCTYPE(c_i32, _P)),
               ("result", ctypes.CFUNCTYPE(c_i32, _P, ctypes.POINTER(LmdResult),
                                           ctypes.POINTER(LmdError))),
               ("close", ctypes.CFUNCTYPE(None, _P)),
               ("destroy", ctypes.CFUNCTYPE(None, _P)),
               # ABI 1.1
               ("start_batch", ctypes.CFUNCTYPE(c_i32, _P, c_u32, ctypes.POINTER(ctypes.POINTER(LmdRequest)),
                                                ctypes.POINTER(_P), ctypes.POINTER(LmdError)))]


class LmdApi(ctypes.Structure):
    _fields_ = _API_FIELDS


def _err():
    e = LmdError()
    e.struct_size = ctypes.sizeof(LmdError)
    return e


class Library:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.lmdrive_get_api.restype = ctypes.POINTER(LmdApi)
        self.api = self.lib.lmdrive_get_api().contents
        self.lib.lmdrive_ref_logits.restype = c_i32

    def logits(self, config, tokens, last_k, vocab):
        toks = (c_i32 * len(tokens))(*tokens)
        out = np.zeros((last_k, vocab), dtype=np.float32)
        e = _err()
        rc = self.lib.lmdrive_ref_logits(json.dumps(config).encode(), toks, len(tokens), last_k,
                                         out.ctypes.data_as(ctypes.POINTER(c_f32)),
                                         ctypes.byref(e))
        if rc != 0:
            raise RuntimeError(f"lmdrive_ref_logits: {rc}: {e.message.decode()}")
        return out

    def engine(self, config):
        return Engine(self, config)


class Engine:
    def __init__(self, lib, config):
        self.lib, self.api = lib, lib.api
        h = _P()
        e = _err()
        t0 = time.time()
        rc = self.api.create(json.dumps(config).encode(), ctypes.byref(h), ctypes.byref(e))
        if rc != 0:
            raise RuntimeError(f"create {config}: {rc}: {e.message.decode()}")
        self.load_s = time.time() - t0
        self.h = h
        info = LmdInfo()
        info.struct_size = ctypes.sizeof(LmdInfo)
        e = _err()
        if self.api.info(self.h, ctypes.byref(info), ctypes.byref(e)) != 0:
            raise RuntimeError(e.message.decode())
        self.info = {"backend": info.backend.decode(), "dtype": info.dtype.decode(),
                     "tp_size": info.tp_size, "n_devices": info.n_devices,
                     "device_ids": [info.device_ids[i] for i in range(info.n_devices)],
                     "vocab": info.vocab_size, "caps": info.caps,
                     "max_sequences": info.max_sequences}

    @staticmethod
    def _request(prompt, max_new, watch, keep):
        """A greedy ignore_eos request; keep holds the ctypes arrays it points
        into for as long as the request is used."""
        p = (c_i32 * len(prompt))(*prompt)
        wids = (c_i32 * max(1, len(watch)))(*watch)
        keep += [p, wids]
        req = LmdRequest()
        req.struct_size = ctypes.sizeof(LmdRequest)
        req.n_prompt = len(prompt)
        req.prompt = p
        req.max_new_tokens = max_new
        req.min_new_tokens = max_new
        req.ignore_eos = 1
        req.temperature = 0.0
        req.top_p = 1.0
        req.want_logprobs = 1
        req.n_watch = len(watch)
        req.watch_ids = wids if watch else None
        return req

    def _start(self, req):
        s = _P()
        e = _err()
        if self.api.start(self.h, ctypes.byref(req), ctypes.byref(s), ctypes.byref(e)) != 0:
            raise RuntimeError(f"start: {e.message.decode()}")
        return s

    def _poll_into(self, s, buf, wbuf, watch, timeout_ns, ids, lps, wl):
        """One poll of stream s (buffers of 256 tokens); its tokens are
        appended to ids, lps and, with watch ids, wl. True once done."""
        pr = LmdPoll()
        pr.struct_size = ctypes.sizeof(LmdPoll)
        e = _err()
        if self.api.poll(s, buf, wbuf if watch else None, 256, timeout_ns, ctypes.byref(pr),
                         ctypes.byref(e)) != 0:
            raise RuntimeError(f"poll: {e.message.decode()}")
        for k in range(pr.n):
            ids.append(buf[k].id)
            lps.append(buf[k].logprob)
            if watch:
                wl.append([wbuf[k * len(watch) + j] for j in range(len(watch))])
        return bool(pr.done)

    def _result(self, s):
        r = LmdResult()
        r.struct_size = ctypes.sizeof(LmdResult)
        e = _err()
        if self.api.result(s, ctypes.byref(r), ctypes.byref(e)) != 0:
            raise RuntimeError(f"result: {e.message.decode()}")
        return r

    def batch_greedy(self, prompts, max_new, watch=(), join_after=None):
        """Greedy generations of several prompts at once (start_batch), or,
        with join_after=k, the last prompt started on its own once the others
        produced k tokens (it joins the running batch). Returns, per prompt,
        (ids, logprobs, watched logprobs per step, result dict)."""
        keep = []
        reqs = [self._request(p, max_new, watch, keep) for p in prompts]
        first = reqs if join_after is None else reqs[:-1]
        arr = (ctypes.POINTER(LmdRequest) * len(first))(*[ctypes.pointer(r) for r in first])
        streams = (_P * len(first))()
        e = _err()
        if self.api.start_batch(self.h, len(first), arr, streams, ctypes.byref(e)) != 0:
            raise RuntimeError(f"start_batch: {e.message.decode()}")
        streams = list(streams)
        n = len(prompts)
        out = [([], [], [], None) for _ in range(n)]
        done = [False] * n
        buf = (LmdToken * 256)()
        wbuf = (c_f32 * (256 * max(1, len(watch))))()
        try:
            while not all(done):
                if join_after is not None and len(streams) < n and len(out[0][0]) >= join_after:
                    streams.append(self._start(reqs[-1]))
                for i, s in enumerate(streams):
                    if done[i]:
                        continue
                    ids, lps, wl, _ = out[i]
                    if self._poll_into(s, buf, wbuf, watch, 1_000_000, ids, lps, wl):
                        r = self._result(s)
                        out[i] = (ids, lps, wl, {"finish_reason": r.finish_reason,
                                                 "max_batch": r.max_batch, "detail": r.detail.decode()})
                        done[i] = True
        finally:
            for s in streams:
                self.api.close(s)
        return out

    def greedy(self, prompt, max_new, watch=()):
        """Greedy generation with ignore_eos: (ids, logprobs, result dict);
        with watch ids, result["watch"] holds their logprobs, one list a step."""
        keep = []
        req = self._request(prompt, max_new, watch, keep)
        s = self._start(req)
        ids, lps, wlp = [], [], []
        buf = (LmdToken * 256)()
        wbuf = (c_f32 * (256 * max(1, len(watch))))()
        try:
            while not self._poll_into(s, buf, wbuf, watch, 1_000_000_000, ids, lps, wlp):
                pass
            r = self._result(s)
        finally:
            self.api.close(s)
        res = {"finish_reason": r.finish_reason, "output_tokens": r.output_tokens,
               "ttft_s": (r.t_first_ns - r.t_submit_ns) / 1e9,
               "decode_s": (r.t_last_ns - r.t_first_ns) / 1e9,
               "device_prefill_s": r.device_prefill_ns / 1e9 if r.device_prefill_ns >= 0 else None,
               "device_decode_s": r.device_decode_ns / 1e9 if r.device_decode_ns >= 0 else None,
               "detail": r.detail.decode(), "watch": wlp}
        return ids, lps, res

    def close(self):
        if self.h:
            self.api.destroy(self.h)
            self.h = None
