"""The vLLM, LMDeploy and TensorRT-LLM adapters against fakes of exactly
the API surface they use, with each library's defaults and traps."""
import threading

import pytest

from lmdrive_py import lmdeploy_adapter, trtllm_adapter, vllm_adapter
from lmdrive_py.common import EngineError, Request
from lmdrive_py.protocol import TokenSink

ADAPTERS = {"vllm": vllm_adapter.VLLMAdapter, "lmdeploy": lmdeploy_adapter.LMDeployAdapter,
            "trtllm-py": trtllm_adapter.TRTLLMAdapter}


def run(adapter, channel, **req):
    req.setdefault("prompt", list(range(1, 11)))
    sink = TokenSink(channel)
    res = adapter.generate(Request(req), sink, threading.Event())
    return res, sink


def tokens(channel):
    out = []
    for ev in channel.events:
        out += ev["tokens"]["ids"]
    return out


def opened(name, model_dir, script=None, **cfg):
    a = ADAPTERS[name](dict(cfg, model=model_dir(script, **({"max_pos": cfg.pop("_max_pos")} if "_max_pos" in cfg else {}))))
    info = a.open()
    return a, info


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_full_length_with_ignore_eos(name, model_dir, channel):
    # The model emits <|im_end|> at step 5: ignore_eos must carry on past it.
    a, info = opened(name, model_dir, {"emit": {"5": 151645}})
    res, sink = run(a, channel, max_new_tokens=40, ignore_eos=True)
    assert res["finish"] == "length" and res["output_tokens"] == 40 == len(tokens(channel))
    assert res["max_new_requested"] == 40  # the library default (16/512/32) never applied
    assert res["ignore_eos_applied"] is True
    assert tokens(channel)[5] == 151645
    assert info["versions"] and info["effective_config"]
    times = [t for ev in channel.events for t in ev["tokens"]["t"]]
    assert times == sorted(times) and res["submit_ns"] <= times[0] <= times[-1] <= res["done_ns"]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_model_eos_stops(name, model_dir, channel):
    a, _ = opened(name, model_dir, {"emit": {"5": 151645}})
    res, _ = run(a, channel, max_new_tokens=40)
    assert res["finish"] == "eos" and res["output_tokens"] == 6 and res["stop_token"] == 151645
    assert 151645 in res["stop_ids"]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_multi_token_stop_sequence(name, model_dir, channel):
    a, _ = opened(name, model_dir, {"emit": {"3": 77, "4": 78}})
    res, _ = run(a, channel, max_new_tokens=40, stop_sequences=[[99], [77, 78]])
    assert res["finish"] == "stop" and res["stop_sequence"] == 1 and res["output_tokens"] == 5


def test_vllm_stop_id_survives_ignore_eos(model_dir, channel):
    a, _ = opened("vllm", model_dir, {"emit": {"3": 151643}})
    res, _ = run(a, channel, max_new_tokens=40, ignore_eos=True, stop_sequences=[[151643]])
    assert res["finish"] == "stop" and res["stop_sequence"] == 0 and res["output_tokens"] == 4
    assert res["stop_ids"] == [151643]


def test_trtllm_ignore_eos_drops_caller_stop_ids(model_dir, channel):
    a, _ = opened("trtllm-py", model_dir, {"emit": {"3": 151643}})
    res, _ = run(a, channel, max_new_tokens=40, ignore_eos=True, stop_sequences=[[151643]])
    assert res["finish"] == "length" and res["output_tokens"] == 40 and res["stop_ids"] == []
    assert "dropped" in res["effective_config"]["stop_token_ids_under_ignore_eos"]


def test_trtllm_one_end_id(model_dir, channel):
    # <|endoftext|> (the second EOS) does not stop TensorRT-LLM: end_id is one id.
    a, info = opened("trtllm-py", model_dir, {"emit": {"3": 151643}})
    res, _ = run(a, channel, max_new_tokens=12)
    assert res["finish"] == "length" and info["eos_ids"] == [151645]
    assert info["effective_config"]["eos_ids_not_stopping"] == [151643]


@pytest.mark.parametrize("name,key,source", [("vllm", "max_model_len", "max_model_len=64 (engine)"),
                                              ("lmdeploy", "session_len", "session_len=64 (effective, read back after loading)"),
                                              ("trtllm-py", "max_seq_len", "max_seq_len=64 (engine)")])
def test_length_clamp_is_named(name, key, source, model_dir, channel):
    # Every library reports this end as "length"; the adapter names the limit.
    a, _ = opened(name, model_dir, None, **{key: 64})
    res, _ = run(a, channel, max_new_tokens=100, ignore_eos=True)
    assert res["finish"] == "limit" and res["output_tokens"] == 54 and res["max_new_effective"] == 54
    assert res["limit_source"] == source and res["raw_status_text"].startswith("finish_reason=length")


def test_lmdeploy_kv_limited_session_len_is_read_back(model_dir, channel, capfd):
    a, info = opened("lmdeploy", model_dir, {"kv_session_len": 128})
    assert info["max_seq_len"] == 128 and info["effective_config"]["session_len_requested"] == 4096
    res, _ = run(a, channel, max_new_tokens=500, ignore_eos=True)
    assert res["finish"] == "limit" and res["output_tokens"] == 118 and "session_len=128" in res["limit_source"]
    err = capfd.readouterr().err
    assert "max_new_tokens=500" in err and "max_new_tokens is truncated to 118" in err  # evidence for lmdrive eos


def test_lmdeploy_turbomind_drops_stop_ids_under_ignore_eos(model_dir, channel):
    a, _ = opened("lmdeploy", model_dir, {"emit": {"3": 151643}})
    res, _ = run(a, channel, max_new_tokens=20, ignore_eos=True, stop_sequences=[[151643]])
    assert res["finish"] == "length" and res["stop_ids"] == []


def test_lmdeploy_pytorch_bans_stop_ids_under_ignore_eos(model_dir, channel):
    a, _ = opened("lmdeploy", model_dir, {"emit": {"3": 151645}}, backend="pytorch")
    res, _ = run(a, channel, max_new_tokens=20, ignore_eos=True)
    assert tokens(channel)[3] != 151645 and "bad words" in res["effective_config"]["stop_ids_under_ignore_eos"]


def test_vllm_metrics_prefix_cache_and_bundles(model_dir, channel):
    a, info = opened("vllm", model_dir, {"tokens_per_step": 4})
    assert info["effective_config"]["disable_log_stats"] is False and info["effective_config"]["enable_prefix_caching"] is False
    run(a, channel, max_new_tokens=16, ignore_eos=True)
    res, _ = run(a, channel, max_new_tokens=16, ignore_eos=True)
    assert res["cached_prompt_tokens"] == 0  # prefix caching off: the repeat is a full prefill
    assert res["engine_first_ns"] > 0 and res["engine_last_ns"] >= res["engine_first_ns"]
    last = channel.events[-1]["tokens"]
    assert last["b"] == [4, 4, 4, 4] and len(set(last["t"])) == 1


def test_trtllm_perf_metrics_on_our_clock(model_dir, channel):
    a, _ = opened("trtllm-py", model_dir)
    res, _ = run(a, channel, max_new_tokens=8, ignore_eos=True)
    assert res["submit_ns"] <= res["engine_first_ns"] <= res["engine_last_ns"] <= res["done_ns"]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_logprobs_and_watch(name, model_dir, channel):
    a, _ = opened(name, model_dir)
    run(a, channel, max_new_tokens=4, ignore_eos=True, want_logprobs=True, watch_ids=[151643])
    ev = channel.events[0]["tokens"]
    assert ev["lp"][0] is not None and len(ev["w"][0]) == 1


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_cancel(name, model_dir, channel):
    a, _ = opened(name, model_dir)
    cancel = threading.Event()
    sink = TokenSink(channel)
    orig = sink.emit

    def emit(ids, t, lps=None, w=None):
        orig(ids, t, lps, w)
        if sink.count >= 5:
            cancel.set()
    sink.emit = emit
    res = a.generate(Request({"prompt": [1, 2], "max_new_tokens": 100000, "ignore_eos": True}), sink, cancel)
    assert res["finish"] == "cancelled" and 5 <= res["output_tokens"] < 100


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_calibrate_needs_no_library(name, channel, monkeypatch):
    for mod in ("vllm", "lmdeploy", "tensorrt_llm"):
        monkeypatch.setitem(__import__("sys").modules, mod, None)
    a = ADAPTERS[name]({"calibrate": True})
    a.open()
    res, _ = run(a, channel, max_new_tokens=2000, ignore_eos=True)
    assert res["finish"] == "length" and res["output_tokens"] == 2000 and tokens(channel)[1999] == 1999


@pytest.mark.parametrize("name,module,pip", [("vllm", "vllm", "pip install vllm"), ("lmdeploy", "lmdeploy", "pip install lmdeploy"),
                                             ("trtllm-py", "tensorrt_llm", "pip install tensorrt_llm")])
def test_missing_library_names_the_pip_command(name, module, pip, model_dir, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, module, None)
    with pytest.raises(EngineError, match="is not installed for .*: " + pip):
        ADAPTERS[name]({"model": model_dir()}).open()


@pytest.mark.parametrize("name,old", [("vllm", "0.9.1"), ("lmdeploy", "0.6.5"), ("trtllm-py", "0.21.0")])
def test_unsupported_version(name, old, model_dir, monkeypatch):
    import importlib
    import sys
    mod = {"vllm": "vllm", "lmdeploy": "lmdeploy", "trtllm-py": "tensorrt_llm"}[name]
    monkeypatch.setattr(sys.modules.get(mod) or importlib.import_module(mod), "__version__", old)
    with pytest.raises(EngineError, match="is not supported by lmdrive's adapter: it supports .* or later"):
        ADAPTERS[name]({"model": model_dir()}).open()


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_config_errors(name, tmp_path):
    with pytest.raises(EngineError, match='unknown config key "bogus"'):
        ADAPTERS[name]({"model": "x", "bogus": 1})
    with pytest.raises(EngineError, match="loads model folders only"):
        ADAPTERS[name]({"model": "random:tiny"}).open()
    with pytest.raises(EngineError, match="is not a folder"):
        ADAPTERS[name]({"model": str(tmp_path / "nope")}).open()


def test_vllm_refused_prompt_is_one_line(model_dir, channel):
    a, _ = opened("vllm", model_dir, None, max_model_len=8)
    with pytest.raises(EngineError, match="engine vllm refused the request: The decoder prompt"):
        run(a, channel, max_new_tokens=4)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_model_code_needs_trust(name, model_dir):
    import json
    import os
    path = model_dir()
    cfg = json.load(open(os.path.join(path, "config.json")))
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling.MyModel"}
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"))
    with pytest.raises(EngineError, match="ships its own model code .* only with --trust-remote-code"):
        ADAPTERS[name]({"model": path}).open()
    a = ADAPTERS[name]({"model": path, "trust_remote_code": True})
    a.open()  # allowed: the (fake) library loads it
