#!/usr/bin/env python3
"""Writes testdata/tokenizer/tiny-bpe.json: a small GPT-2 style byte-level
BPE tokenizer (256 byte tokens, a few merges, one added token) for tests
that need a tokenizer.json other than the built-in one. Checked by loading
it with Hugging Face tokenizers.
"""
import json
import os

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "testdata", "tokenizer", "tiny-bpe.json")


def byte_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def main():
    vocab = {c: i for i, c in enumerate(byte_chars())}
    merges = [("a", "b"), ("ab", "ab"), ("Ġ", "ab"), ("Ġ", "Ġ"), ("ĠĠ", "ĠĠ"), ("c", "d")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": len(vocab), "content": "<eos>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [f"{l} {r}" for l, r in merges]},
    }
    text = json.dumps(tok, ensure_ascii=False, indent=1) + "\n"
    Tokenizer.from_str(text)  # must load in Hugging Face tokenizers
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
