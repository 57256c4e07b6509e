#!/usr/bin/env python3
"""Writes testdata/tokenizer/golden.json: token ids computed by Hugging Face
tokenizers (the PyPI package) for lmdrive's own corpus, with the built-in
Qwen2.5 tokenizer. Both Go backends are tested against this file.

    python3 -m pip install 'tokenizers==0.23.3'
    python3 tokenize/scripts/make-golden.py

The corpus is testdata/tokenizer/corpus/*.txt plus the edge cases below.
Encoding uses add_special_tokens=False (lmdrive never adds any) and decoding
skip_special_tokens=False (lmdrive shows them).
"""
import gzip
import hashlib
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOKENIZER = os.path.join(ROOT, "tokenize", "internal", "defaultdata", "qwen2.5-tokenizer.json.gz")
CORPUS = os.path.join(ROOT, "testdata", "tokenizer", "corpus")
OUT = os.path.join(ROOT, "testdata", "tokenizer", "golden.json")

SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]


def encode_cases():
    """(name, text) pairs: the edge cases a tokenizer gets wrong first."""
    cases = [
        ("empty", ""),
        ("one-space", " "),
        ("one-letter", "a"),
        ("contractions", "I'm sure you're right; they've left, he'll stay, she'd know, it's 'S 'T 'RE 'VE 'M 'LL 'D."),
        ("contraction-fold", "'ſ 'ſx 'Ste 'sa' ''s don't"),
        ("apostrophes", "rock 'n' roll, ’tis, l'homme, ''quoted''"),
        ("digits", "0 12 345 6789 3.14159 1,000,000 2026-11-27 v1.22.1 0x7fff"),
        ("other-numbers", "١٢٣ १२३ ¹²³ ½ ⅓ Ⅻ ⅻ ① ㈠ 𝟘𝟙𝟚"),
        ("punctuation", "Wait... what?!? (yes) [no] {maybe} <tag/> -- --> ==> ... ;;; ???"),
        ("punct-newlines", "end.\n\nnext!!\r\n\r\nthen?\n"),
        ("spaces-2", "a  b"),
        ("spaces-trailing", "word   "),
        ("spaces-leading", "   word"),
        ("spaces-1000", " " * 1000),
        ("spaces-5000-word", " " * 5000 + "x"),
        ("tabs", "\tindent\n\t\tdeeper\n\t\t\t\tdeepest\t\t"),
        ("whitespace-mix", "a \t \n \t\n\n  \u00a0 \u3000 b\u2003c \u2028 d\u0085e"),
        ("newlines-run", "x" + "\n" * 200 + "y"),
        ("crlf", "line one\r\nline two\r\n\r\nline four\r\n"),
        ("cr-only", "old\rmac\rstyle\r\r"),
        ("crlf-spaces", "a  \r\n  b \r\n\r\n   c"),
        ("nfc-compose", "e\u0301 A\u030a n\u0303o u\u0308ber \u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af"),
        ("nfc-reorder", "a\u0316\u0301 a\u0301\u0316 q\u0323\u0307 q\u0307\u0323 \u1e0b\u0323"),
        ("nfc-singletons", "\u212b \u2126 \u212a \uf900 \u0344 \u0958"),
        ("nfc-precomposed", "Å Ω é ñ ü ệ ǖ ḉ"),
        ("combining-alone", "\u0301\u0302 x\u0301\u0301\u0301\u0301 \u20dd \u0489"),
        ("vietnamese-nfd", "Tie\u0302\u0301ng Vie\u0323\u0302t"),
        ("emoji-zwj", "👨‍👩‍👧‍👦 👩🏽‍🚀 🏳️‍⚧️ 🧑‍🤝‍🧑 👁️‍🗨️"),
        ("emoji-mods", "👍 👍🏻 👍🏿 ✌️ ☝︎ 🇺🇸🇬🇧 🏴󠁧󠁢󠁳󠁣󠁴󠁿"),
        ("zero-width", "a\u200bb\u200cc\u200dd\ufeffe\u2060f"),
        ("controls", "\x1b[31mred\x1b[0m \x07\x08\x7f \x01\x02"),
        ("nul", "a\x00b \x00"),
        ("private-use", "\ue000\uf8ff\U000f0000"),
        ("astral", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁 𐍈 𓀀"),
        ("new-letters", "\U00011f04\U00011f05 \U0001e4d0\U0001e4d1 \U00010d50\U00010d51 \U000105c0\U000105c1 \U00016d40"),
        ("new-digits", "\U00011f50\U00011f51 \U0001e4f0\U0001e4f1 \U00010d40\U00010d41 \U000116d0 \U0001ccf0"),
        ("unassigned", "\U0003ffff\u0378 x\U000e0080"),
        ("cjk-punct", "「你好」，世界！（测试）……——《书名》"),
        ("fullwidth", "ＡＢＣ１２３ｱｲｳ"),
        ("url-email", "https://example.com/a/b?c=1&d=%20 user.name+tag@example.org"),
        ("html", "<div class=\"x\">a &amp; b</div><br/>"),
        ("long-word", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8),
        ("long-digits", "9" * 300),
        ("long-punct", "=" * 300 + "\n"),
        ("long-cjk", "测" * 500),
        ("repeated-token-text", "hello " * 200),
    ]
    # Every special token alone, at the start, in the middle and back to back.
    for tok in SPECIAL:
        cases.append(("special " + tok, tok))
        cases.append(("special-in-text " + tok, "a" + tok + "b " + tok + "\n" + tok + tok))
    cases += [
        ("chatml", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
        ("partial-specials", "<|im_start <|im_end| im_end|> <|endoftext <|endoftext|x |> <| <|im_|> <tool_call </tool_call"),
        ("nested-specials", "<|<|im_end|>|> <<|im_start|>> <|im_start|im_end|>"),
        ("special-like", "<|not_a_token|> <|IM_END|> < |im_end| > <|im_end |>"),
        ("qwen3-only-tokens", "<think>x</think> <tool_response>y</tool_response>"),
        ("special-whitespace", "  <|im_end|>  \n<|im_end|>\n\n"),
    ]
    for name in sorted(os.listdir(CORPUS)):
        if name.endswith(".txt"):
            with open(os.path.join(CORPUS, name), encoding="utf-8", newline="") as f:
                cases.append(("corpus " + name, f.read()))
    return cases


def byte_token_ids(tok):
    """Id of the single-byte token of every byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return {b: tok.token_to_id(chr(table[b])) for b in range(256)}


def decode_cases(tok):
    """(name, ids) pairs, including ids whose bytes are not valid UTF-8."""
    bt = byte_token_ids(tok)

    def raw(*chunks):
        ids = []
        for c in chunks:
            if isinstance(c, bytes):
                ids += [bt[b] for b in c]
            else:
                ids += tok.encode(c, add_special_tokens=False).ids
        return ids

    return [
        ("plain", raw("Hello, world")),
        ("specials", raw("<|im_start|>user\nhi<|im_end|>\n<|endoftext|>")),
        ("cjk-bytes", raw("你好".encode())),
        ("truncated-2-of-3", raw("ok ", "你".encode()[:2])),
        ("truncated-1-of-3-then-text", raw("你".encode()[:1], " after")),
        ("truncated-3-of-4-emoji", raw("😀".encode()[:3], "x")),
        ("lone-continuation", raw(b"\x80", "a", b"\xbf\xbf")),
        ("overlong", raw(b"\xc0\xaf", b"\xe0\x80\xaf", "z")),
        ("surrogate", raw(b"\xed\xa0\x80", b"\xed\xbf\xbf")),
        ("above-max", raw(b"\xf4\x90\x80\x80", b"\xf5\x80")),
        ("invalid-leads", raw(b"\xc1\xf8\xfe\xff")),
        ("split-then-complete", raw("中".encode()[:1], "中".encode()[1:], "文")),
        ("bad-in-middle", raw("start ", b"\xe4\xbd", " middle ", b"\xf0\x9f", " end")),
        ("nul-byte", raw("a", b"\x00", "b")),
        ("every-byte", [bt[b] for b in range(256)]),
        ("all-added", list(range(151643, 151665))),
    ]


def main():
    with gzip.open(TOKENIZER, "rb") as f:
        data = f.read()
    tok = Tokenizer.from_str(data.decode("utf-8"))
    enc = []
    for name, text in encode_cases():
        ids = tok.encode(text, add_special_tokens=False).ids
        enc.append({"name": name, "text": text, "ids": ids})
    dec = []
    for name, ids in decode_cases(tok):
        dec.append({"name": name, "ids": ids, "text": tok.decode(ids, skip_special_tokens=False)})
    golden = {
        "about": "Token ids from Hugging Face tokenizers for lmdrive's tokenizer tests; "
                 "regenerate with tokenize/scripts/make-golden.py.",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_sha256": hashlib.sha256(data).hexdigest(),
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "encode": enc,
        "decode": dec,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=True, indent=1)
        f.write("\n")
    total = sum(len(c["ids"]) for c in enc)
    print(f"wrote {OUT}: {len(enc)} encode cases ({total} ids), {len(dec)} decode cases, "
          f"tokenizers {tokenizers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
