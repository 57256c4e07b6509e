"""The random-weight spec (docs/ref-engine.md) as the worker computes it."""
import struct

import torch

from lmdrive_py import random_weights


def bits(t):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in t.tolist()]


def test_spec_check_values():
    v = random_weights.values(torch, "model.embed_tokens.weight", [151936, 64], 1, 0, 4, "cpu")
    assert bits(v) == [0xbf5177f4, 0xbf08a1a2, 0xbf4de3fa, 0xbf0fc174]


def test_chunks_are_independent():
    whole = random_weights.values(torch, "model.layers.0.mlp.up_proj.weight", [176, 64], 3, 0, 1000, "cpu")
    part = random_weights.values(torch, "model.layers.0.mlp.up_proj.weight", [176, 64], 3, 400, 600, "cpu")
    assert torch.equal(whole[400:], part)
    t = torch.empty(176, 64)
    random_weights.fill_(torch, t, "model.layers.0.mlp.up_proj.weight", 3, chunk=999)
    assert torch.equal(t.view(-1)[:1000], whole)


def test_rules():
    assert random_weights.rule("model.norm.weight", 64) == (random_weights.float32(0.1), True)
    assert random_weights.rule("model.layers.1.self_attn.q_proj.bias", 64) == (random_weights.float32(0.1), False)
    assert random_weights.rule("lm_head.weight", 64) == (1.0, False)
    assert random_weights.rule("model.layers.1.mlp.down_proj.weight", 176)[0] == random_weights.float32(176 ** -0.5)
    try:
        random_weights.rule("model.rotary.inv_freq", 1)
    except ValueError as e:
        assert "no random-weight rule" in str(e)
    else:
        raise AssertionError("an unknown tensor got a rule")


def test_splitmix64_matches_python_ints():
    xs = [0, 1, 2 ** 63, 2 ** 64 - 1, 0x9E3779B97F4A7C15]
    got = random_weights._splitmix64_t(torch, torch.tensor([random_weights._signed(x) for x in xs], dtype=torch.int64))
    assert [g & random_weights.MASK64 for g in got.tolist()] == [random_weights.splitmix64(x) for x in xs]
