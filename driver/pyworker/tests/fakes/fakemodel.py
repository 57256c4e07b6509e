"""The "model" behind the library fakes: deterministic tokens, scripted
from the model folder's config.json (key "lmdrive_fake"), so tests choose
when the model emits an EOS or a stop id.

    "lmdrive_fake": {"emit": {"<step>": <id>}, "tokens_per_step": k, "kv_session_len": S, "step_ms": m}

step_ms: each engine step (each token of a stream) takes that long, so that
tests can see requests overlap.
"""
import json
import os
import sys


def load(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    gen = {}
    gp = os.path.join(path, "generation_config.json")
    if os.path.exists(gp):
        with open(gp) as f:
            gen = json.load(f)
    return cfg, gen, cfg.get("lmdrive_fake", {})


def token(script, prompt, step):
    emit = script.get("emit", {})
    if str(step) in emit:
        return int(emit[str(step)])
    return 1000 + (len(prompt) + 7 * step) % 500


def eos_ids(cfg, gen):
    out = []
    for v in (cfg.get("eos_token_id"), gen.get("eos_token_id")):
        for i in (v if isinstance(v, list) else [v] if v is not None else []):
            if i not in out:
                out.append(i)
    return out


def log(msg):
    print(msg, file=sys.stderr, flush=True)
