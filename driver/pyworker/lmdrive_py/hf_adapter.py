"""Engine `hf`: Hugging Face transformers' own `generate`, no server.

- model: a checkpoint folder, or random:<preset> with exactly the reference
  engine's random weights (random_weights.py), so both engines can be
  compared token by token at any size;
- dtype fp32/fp16/bf16; device cpu, cuda, cuda:N, or auto (device_map="auto"
  over every visible GPU); precision int8 through bitsandbytes;
- one token per step, stamped by a streamer as it reaches the host;
- ignore_eos clears the EOS ids of the generation config, so no EOS
  criterion runs and no logit is touched (min_new_tokens would mask them);
- the effective generation config of each request is recorded, with
  transformers' own length default (max_length=20 when nothing is passed).
"""
import copy
import importlib.util
import json
import math
import os
import sys

from . import presets, random_weights
from .common import EngineError, StopRules, check_version, now_ns, python_name, require, result, take_config

KEYS = ("model", "seed", "device", "dtype", "precision", "tp", "threads", "trust_remote_code",
        "attn_implementation", "calibrate", "revision")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# Supported releases: generate with BaseStreamer and Qwen2 from 4.45 on;
# 5.17 is what the GPU hosts run.
TRANSFORMERS_LOWEST = "4.45"
TORCH_LOWEST = "2.1"
CALIBRATE_VOCAB = 151936


class HFAdapter:
    def __init__(self, config):
        self.cfg = take_config(config, KEYS, "hf")
        self.model = None
        self.calibrate = bool(self.cfg.get("calibrate"))

    # ---- loading -------------------------------------------------------
    def open(self):
        cfg = self.cfg
        device, dtype_name, precision, model_arg, trust = _check_config(cfg, self.calibrate)
        torch = require("torch", "torch", "PyTorch")
        self.torch = torch
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        if self.calibrate:
            return self._open_calibrate()
        transformers = require("transformers", "'transformers>=%s'" % TRANSFORMERS_LOWEST, "transformers")
        self.tf = transformers
        check_version("transformers", transformers.__version__, TRANSFORMERS_LOWEST)
        check_version("torch", torch.__version__, TORCH_LOWEST)
        if device != "cpu" and not torch.cuda.is_available():
            raise EngineError("engine hf: device %s needs a GPU, but torch %s sees none (torch.cuda.is_available() is False); "
                              "use --device cpu, or a CUDA build of torch on a host with an NVIDIA driver" % (device, torch.__version__))
        self.dtype_name, self.dtype, self.device = dtype_name, getattr(torch, DTYPES[dtype_name]), device
        self.precision = precision or dtype_name
        self.streamer_cls = _streamer_class(transformers)
        self.stops_cls = _stops_class(transformers)

        t0 = now_ns()
        if model_arg.startswith("random:"):
            model, model_gen = self._random_model(model_arg[len("random:"):], int(cfg.get("seed") or 0))
        else:
            model, model_gen = self._checkpoint_model(model_arg, trust)
        model.eval()
        load_weights_ns = now_ns() - t0
        self.model = model
        mcfg = model.config
        self.vocab = int(mcfg.vocab_size)
        self.eos_ids = _eos_union(getattr(mcfg, "eos_token_id", None), getattr(model_gen, "eos_token_id", None))
        self.pad_id = getattr(model_gen, "pad_token_id", None)
        if self.pad_id is None:
            self.pad_id = getattr(mcfg, "pad_token_id", None)
        self.bos_id = getattr(model_gen, "bos_token_id", None)
        # Every request's generation config is built from the request alone:
        # a neutral model config keeps the checkpoint's sampling defaults
        # (temperature, top_p, repetition_penalty...) and EOS ids from
        # filling in what a request leaves unset.
        self.model_gen = model_gen
        model.generation_config = transformers.GenerationConfig()
        self.input_device = _input_device(torch, model)
        return self._describe(trust, load_weights_ns)

    def _describe(self, trust, load_weights_ns):
        """The engine's info: what it loaded and its effective configuration."""
        torch, transformers, model = self.torch, self.tf, self.model
        mcfg = model.config
        devices = sorted({p.device.index for p in model.parameters() if p.device.type == "cuda"})
        attn = getattr(mcfg, "_attn_implementation", None) or self.cfg.get("attn_implementation") or ""
        effective = {
            "device": self.device, "dtype": self.dtype_name, "precision": self.precision, "attn_implementation": attn,
            "trust_remote_code": trust, "model_generation_config": _diff(self.model_gen),
            "model_generation_config_applied": "eos/pad/bos ids only; sampling comes from the request",
            "transformers_default_max_length": _default_max_length(transformers),
            "max_position_embeddings": getattr(mcfg, "max_position_embeddings", None),
            "length_limit": "none: transformers generates max_new_tokens even past max_position_embeddings",
            "hf_device_map": {k: str(v) for k, v in (getattr(model, "hf_device_map", None) or {}).items()} or None,
            "load_weights_ns": load_weights_ns, "generate_batch": hasattr(model, "generate_batch"),
            "threads": torch.get_num_threads(),
        }
        return {
            "backend": "transformers", "version": transformers.__version__,
            "model": self.model_name, "dtype": self.precision, "vocab_size": self.vocab, "tp_size": 1,
            "device_ids": devices, "eos_ids": self.eos_ids, "max_seq_len": 0, "max_input_len": 0,
            "caps": ["logprobs", "sampling", "watch"], "versions": _versions(torch, transformers),
            "effective_config": effective,
        }

    def _open_calibrate(self):
        self.vocab = CALIBRATE_VOCAB
        self.eos_ids = list(presets.EOS_IDS)
        self.model_name = "calibrate"
        return {"backend": "transformers", "version": "calibrate (no model)", "model": "calibrate", "dtype": "none",
                "vocab_size": self.vocab, "eos_ids": self.eos_ids, "caps": [],
                "versions": _versions(self.torch, None),
                "effective_config": {"calibrate": True, "what": "the adapter's per-token path (streamer, stop "
                                     "criterion, protocol) fed token by token without a model"}}

    def _quantization(self):
        if self.precision != "int8":
            return None
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise EngineError("--precision int8 with engine hf needs bitsandbytes, which is not installed for %s: "
                              "pip install bitsandbytes (it needs a CUDA GPU)" % python_name())
        if self.device == "cpu":
            raise EngineError("--precision int8 with engine hf runs bitsandbytes' LLM.int8() on a GPU; use --device cuda or auto")
        return self.tf.BitsAndBytesConfig(load_in_8bit=True)

    def _checkpoint_model(self, path, trust):
        tf, torch = self.tf, self.torch
        self.model_name = path
        kw = {_dtype_kwarg(tf): self.dtype, "trust_remote_code": trust, "local_files_only": True}
        if self.cfg.get("attn_implementation"):
            kw["attn_implementation"] = self.cfg["attn_implementation"]
        if self.cfg.get("revision"):
            kw["revision"] = self.cfg["revision"]
        q = self._quantization()
        if q is not None:
            kw["quantization_config"] = q
        if self.device == "auto":
            require("accelerate", "accelerate", "accelerate (device_map=\"auto\")")
            kw["device_map"] = "auto"
        elif self.device != "cpu" or q is not None:
            kw["device_map"] = self.device if self.device != "cuda" else "cuda:0"
        try:
            model = tf.AutoModelForCausalLM.from_pretrained(path, **kw)
        except (ValueError, OSError, KeyError, RuntimeError) as e:
            msg = " ".join(str(e).split())
            if "trust_remote_code" in msg and not trust:
                raise EngineError("engine hf: %s ships its own model code, which lmdrive runs only with "
                                  "--trust-remote-code (read it first)" % path)
            raise EngineError("engine hf: transformers %s cannot load %s: %s" % (tf.__version__, path, msg[:400]))
        gen = getattr(model, "generation_config", None) or tf.GenerationConfig()
        return model, copy.deepcopy(gen)

    def _random_model(self, name, seed):
        tf, torch = self.tf, self.torch
        p = presets.lookup(name)
        if self.precision == "int8":
            raise EngineError("engine hf: --precision int8 loads through bitsandbytes from a checkpoint folder; "
                              "write one with `lmdrive model init --preset %s --seed %d --dtype fp16 --out DIR`" % (name, seed))
        self.model_name = "random:%s seed=%d" % (name, seed)
        hf = presets.hf_config(p)
        if self.cfg.get("attn_implementation"):
            hf["attn_implementation"] = self.cfg["attn_implementation"]
        config = tf.Qwen2Config(**hf)
        gen = tf.GenerationConfig(bos_token_id=presets.PAD_ID, eos_token_id=list(presets.EOS_IDS),
                                  pad_token_id=presets.PAD_ID, do_sample=False)
        if self.device == "auto":
            return self._random_dispatched(config, seed), gen
        device = "cuda:0" if self.device == "cuda" else self.device
        with torch.device(device):
            model = tf.AutoModelForCausalLM.from_config(config, **{_dtype_kwarg(tf): self.dtype})
        with torch.no_grad():
            for pname, param in model.named_parameters():
                random_weights.fill_(torch, param.data, pname, seed)
        return model, gen

    def _random_dispatched(self, config, seed):
        """random:<preset> over every GPU: an empty model, accelerate's
        device map, each tensor generated on its own GPU, then dispatched."""
        tf, torch = self.tf, self.torch
        accelerate = require("accelerate", "accelerate", "accelerate (device_map=\"auto\")")
        from accelerate.utils import set_module_tensor_to_device

        with accelerate.init_empty_weights():
            model = tf.AutoModelForCausalLM.from_config(config, **{_dtype_kwarg(tf): self.dtype})
        model.tie_weights()
        no_split = getattr(model, "_no_split_modules", None) or []
        dmap = accelerate.infer_auto_device_map(model, no_split_module_classes=list(no_split), dtype=self.dtype)
        for pname, param in list(model.named_parameters()):
            dev = _device_for(pname, dmap)
            value = random_weights.tensor(torch, pname, list(param.shape), seed, self.dtype,
                                          "cpu" if dev in ("cpu", "disk") else dev)
            set_module_tensor_to_device(model, pname, dev if dev != "disk" else "cpu", value=value)
        model.tie_weights()
        return accelerate.dispatch_model(model, device_map=dmap)

    # ---- generation ----------------------------------------------------
    def generate(self, req, sink, cancel):
        for t in req.prompt:
            if not 0 <= t < self.vocab:
                raise EngineError("request: token id %d is outside the vocabulary (0..%d)" % (t, self.vocab - 1))
        if self.calibrate:
            return self._generate_calibrate(req, sink, cancel)
        torch, tf = self.torch, self.tf
        gen = self._generation_config(req)
        streamer = self.streamer_cls(sink, req, torch)
        stops = self.stops_cls(req, cancel, torch)
        hook = None
        if req.want_logprobs:
            hook = self.model.get_output_embeddings().register_forward_hook(streamer.logits_hook)
        ids = torch.tensor([req.prompt], dtype=torch.long, device=self.input_device)
        if not req.greedy:
            torch.manual_seed(req.seed)
        submit = now_ns()
        try:
            with torch.inference_mode():
                self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen,
                                    streamer=streamer, stopping_criteria=tf.StoppingCriteriaList([stops]))
        finally:
            if hook is not None:
                hook.remove()
        done = now_ns()
        return self._result(req, sink, stops, submit, done, _diff(gen, full=True))

    def _generation_config(self, req):
        kw = {"max_new_tokens": req.max_new, "do_sample": not req.greedy, "num_beams": 1, "use_cache": True,
              "repetition_penalty": 1.0, "pad_token_id": self.pad_id, "bos_token_id": self.bos_id,
              # ignore_eos: no EOS ids, so no EOS criterion; the logits stay untouched.
              "eos_token_id": None if req.ignore_eos else list(self.eos_ids)}
        if req.min_new:
            kw["min_new_tokens"] = req.min_new
        if not req.greedy:
            kw.update(temperature=req.temperature, top_k=req.top_k, top_p=req.top_p if 0 < req.top_p < 1 else 1.0)
        return self.tf.GenerationConfig(**kw)

    def _result(self, req, sink, stops, submit, done, effective):
        out = sink.ids
        n = len(out)
        last = out[-1] if out else -1
        kw = {}
        if stops.cancelled:
            finish = "cancelled"
        elif not req.ignore_eos and n >= req.min_new and last in self.eos_ids:
            finish, kw["stop_token"] = "eos", last
        elif stops.stop_sequence >= 0:
            finish, kw["stop_token"], kw["stop_sequence"] = "stop", last, stops.stop_sequence
        elif n >= req.max_new:
            finish = "length"
        else:
            finish = "limit"
            kw["limit_source"] = "transformers ended after %d tokens for a reason of its own" % n
            kw["max_new_effective"] = n
        stop_ids = sorted(set(([] if req.ignore_eos else self.eos_ids) + req.single_stop_ids()))
        return result(req, finish, n, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=done,
                      raw_status_text="transformers generate: %s" % finish, stop_ids=stop_ids,
                      ignore_eos_applied=req.ignore_eos, effective_config=effective, **kw)

    def _generate_calibrate(self, req, sink, cancel):
        """Zero compute: the adapter's own per-token path (streamer put with a
        host tensor, stop criterion, protocol) without transformers' loop."""
        torch = self.torch
        streamer = _CalibrationStreamer(sink, req, torch)
        stops = StopRules(req, self.eos_ids)
        submit = now_ns()
        streamer.put(torch.tensor([req.prompt]))
        finish = None
        i = 0
        while finish is None:
            streamer.put(torch.tensor([i % self.vocab]))
            i += 1
            finish = stops.check(sink.ids, cancel.is_set())
        return result(req, finish, sink.count, sink.first_ns, sink.last_ns, submit_ns=submit, done_ns=now_ns(),
                      stop_token=stops.stop_token, stop_sequence=stops.stop_sequence,
                      stop_ids=sorted(set(([] if req.ignore_eos else self.eos_ids) + req.single_stop_ids())),
                      raw_status_text="calibrate: %s" % finish)

    def close(self):
        self.model = None


class _StreamerCore:
    """Stamps each step's token when transformers hands it over (already
    copied to the host: generate calls .cpu(), which waits for the device),
    then adds logprobs from the last logits row when asked."""

    def __init__(self, sink, req, torch):
        self.sink, self.req, self.torch = sink, req, torch
        self.prompt_seen = False
        self.row = None
        self.watch = None

    def logits_hook(self, module, inputs, output):
        self.row = output[0, -1]

    def put(self, value):
        t = now_ns()
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        lps = watched = None
        if self.req.want_logprobs:
            lps, watched = self._logprobs(ids)
        self.sink.emit(ids, t, lps, watched)

    def _logprobs(self, ids):
        nan = float("nan")
        if self.row is None:
            return [nan] * len(ids), ([[nan] * len(self.req.watch_ids)] * len(ids) if self.req.watch_ids else None)
        torch = self.torch
        row = self.row.float()
        lse = torch.logsumexp(row, dim=-1)
        picks = torch.tensor(ids + self.req.watch_ids, dtype=torch.long, device=row.device)
        vals = (row.index_select(0, picks) - lse).tolist()
        lps = vals[:len(ids)]
        watched = [vals[len(ids):]] * len(ids) if self.req.watch_ids else None
        return lps, watched

    def end(self):
        pass


class _CalibrationStreamer(_StreamerCore):
    pass


def _streamer_class(tf):
    class Streamer(_StreamerCore, tf.generation.streamers.BaseStreamer):
        pass
    return Streamer


def _stops_class(tf):
    class Stops(tf.StoppingCriteria):
        """Cancel and the request's stop sequences (EOS is transformers' own
        criterion). Reads the tail of input_ids only when stop sequences
        exist, so a plain run adds no device synchronization."""

        def __init__(self, req, cancel, torch):
            self.req, self.cancel, self.torch = req, cancel, torch
            self.cancelled = False
            self.stop_sequence = -1
            self.longest = max([len(s) for s in req.stop_sequences] or [0])
            self.prompt_len = len(req.prompt)

        def __call__(self, input_ids, scores, **kwargs):
            stop = False
            if self.cancel.is_set():
                self.cancelled = stop = True
            elif self.longest:
                n = input_ids.shape[-1] - self.prompt_len
                if n >= self.req.min_new:
                    tail = input_ids[0, -self.longest:].tolist()
                    for i, seq in enumerate(self.req.stop_sequences):
                        if n >= len(seq) and tail[len(tail) - len(seq):] == seq:
                            self.stop_sequence, stop = i, True
                            break
            return self.torch.full((input_ids.shape[0],), stop, dtype=self.torch.bool, device=input_ids.device)
    return Stops


def _check_config(cfg, calibrate):
    """Everything about the config that needs no library, checked before the
    slow imports: (device, dtype, precision, model, trust_remote_code)."""
    if int(cfg.get("tp", 1) or 1) > 1:
        raise EngineError("engine hf has no tensor parallelism of its own here; use --tp 1 with --device auto "
                          "to spread the layers over every GPU (device_map=\"auto\")")
    device = str(cfg.get("device") or "cpu")
    if device != "cpu" and not (device in ("cuda", "auto") or device.startswith("cuda:")):
        raise EngineError('engine hf: device "%s" is not cpu, cuda, cuda:N or auto' % device)
    dtype_name = str(cfg.get("dtype") or ("fp32" if device == "cpu" else "fp16"))
    if dtype_name not in DTYPES:
        raise EngineError('engine hf: dtype "%s" is not one of fp32, fp16, bf16' % dtype_name)
    precision = str(cfg.get("precision") or "")
    if precision not in ("", dtype_name, "int8"):
        raise EngineError('engine hf: precision "%s" is not supported; use int8 (bitsandbytes) or leave it out' % precision)
    model = str(cfg.get("model") or "")
    trust = bool(cfg.get("trust_remote_code"))
    if calibrate:
        return device, dtype_name, precision, model, trust
    if not model:
        raise EngineError("engine hf: no model; give --model with a checkpoint folder or random:<preset>")
    if model.startswith("random:"):
        if presets.lookup(model[len("random:"):]) is None:
            raise EngineError('engine hf: unknown preset "%s"; choose one of: %s' % (model[len("random:"):], ", ".join(presets.names())))
    else:
        _check_folder(model, trust)
    if precision == "int8" and importlib.util.find_spec("bitsandbytes") is None:
        raise EngineError("--precision int8 with engine hf needs bitsandbytes, which is not installed for %s: "
                          "pip install bitsandbytes (it needs a CUDA GPU)" % python_name())
    return device, dtype_name, precision, model, trust


def _check_folder(path, trust):
    """A checkpoint folder, and no code shipped in it unless allowed: both
    known before transformers is imported."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise EngineError("engine hf: --model %s is not a checkpoint folder with config.json "
                          "(give a Hugging Face folder, or random:<preset>)" % path)
    try:
        with open(cfg_path) as f:
            auto_map = json.load(f).get("auto_map")
    except (OSError, ValueError) as e:
        raise EngineError("engine hf: %s is not readable JSON: %s" % (cfg_path, e))
    if auto_map and not trust:
        raise EngineError("engine hf: %s ships its own model code, which lmdrive runs only with "
                          "--trust-remote-code (read it first)" % path)


def _eos_union(*vals):
    out = []
    for v in vals:
        if v is None:
            continue
        for i in (v if isinstance(v, (list, tuple)) else [v]):
            if int(i) not in out:
                out.append(int(i))
    return out


def _input_device(torch, model):
    emb = model.get_input_embeddings()
    dev = emb.weight.device
    return dev if dev.type != "meta" else torch.device("cpu")


def _device_for(name, dmap):
    best = None
    for prefix, dev in dmap.items():
        if prefix == "" or name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, dev)
    if best is None:
        raise EngineError("engine hf: accelerate's device map places no device for %s" % name)
    dev = best[1]
    return "cuda:%d" % dev if isinstance(dev, int) else dev


def _dtype_kwarg(tf):
    # transformers 4.56 renamed torch_dtype to dtype.
    from .common import version_tuple
    return "dtype" if version_tuple(tf.__version__) >= (4, 56, 0) else "torch_dtype"


def _default_max_length(tf):
    try:
        return tf.GenerationConfig().max_length or 20
    except Exception:  # noqa: BLE001 - informational only
        return 20


def _diff(gen, full=False):
    """A generation config as a plain dict: the fields that differ from
    transformers' defaults, or (full) the ones that decide length, stopping
    and token choice."""
    if gen is None:
        return {}
    try:
        d = gen.to_dict() if full else gen.to_diff_dict()
    except Exception:  # noqa: BLE001 - informational only
        return {}
    if full:
        keep = ("max_new_tokens", "max_length", "min_new_tokens", "min_length", "do_sample", "temperature", "top_k",
                "top_p", "repetition_penalty", "num_beams", "eos_token_id", "pad_token_id", "bos_token_id", "use_cache",
                "cache_implementation", "no_repeat_ngram_size", "stop_strings", "max_time")
        d = {k: d.get(k) for k in keep}
        d["eos_criterion"] = "off (ignore_eos: eos_token_id cleared, logits untouched)" if d.get("eos_token_id") is None else "on"
    return {k: v for k, v in d.items() if _jsonable(v)}


def _jsonable(v):
    if isinstance(v, float):
        return math.isfinite(v)
    return v is None or isinstance(v, (str, int, bool, list, dict))


def _versions(torch, tf):
    v = {"python": sys.version.split()[0], "torch": torch.__version__}
    if tf is not None:
        v["transformers"] = tf.__version__
    if torch.version.cuda:
        v["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        v["cuda_devices"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        try:
            v["cudnn"] = str(torch.backends.cudnn.version())
        except Exception:  # noqa: BLE001
            pass
    for mod in ("accelerate", "bitsandbytes"):
        m = sys.modules.get(mod)
        if m is not None:
            v[mod] = getattr(m, "__version__", "?")
    return v
