package tokenize

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenTokenizerJSON loads arbitrary bytes as tokenizer.json with every
// backend built in: an error or a tokenizer, never a panic; a tokenizer it
// returns encodes, decodes and describes itself without one either.
func FuzzOpenTokenizerJSON(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizer", "tiny-bpe.json")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}}`,
		`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}, "pre_tokenizer": {"type": "BertPreTokenizer"}}`,
		`{"added_tokens": [{"id": -1, "content": "x"}], "model": {"type": "BPE", "vocab": {}}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 5}, "merges": [["a", "a"]]}, "normalizer": {"type": "NFC"}}`,
		`{"model": {"type": "Unigram", "vocab": [["a", -1.0]]}}`, `{}`, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, backend := range Backends() {
			tok, err := OpenBytes(data, "fuzz", backend)
			if err != nil {
				continue
			}
			ids, err := tok.Encode("Hello, world 123\n\t你好 <eos>")
			if err == nil {
				tok.Decode(ids)
			}
			tok.Decode([]int32{0, 1, 2, -1, 1 << 30})
			tok.AddedTokens()
			tok.VocabSize()
			if info := tok.Info(); info.SHA256 == "" {
				t.Fatalf("%s: no checksum", backend)
			}
			if err := tok.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := tok.Encode("x"); !errors.Is(err, ErrClosed) {
				t.Fatalf("%s: Encode after Close: %v", backend, err)
			}
		}
	})
}
