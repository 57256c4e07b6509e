package tokenize

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHashIDs(t *testing.T) {
	// sha256 of the bytes 01 00 00 00 ff ff ff ff (ids 1 and -1).
	const want = "sha256:b15348c8f462384c01e83b6d499c6faf3f96808f5aa07c6bab4b65b36b4445d4"
	if got := HashIDs([]int32{1, -1}); got != want {
		t.Fatalf("HashIDs = %q, want %q", got, want)
	}
	if HashIDs(nil) != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("HashIDs(nil) = %s, want the sha256 of no bytes", HashIDs(nil))
	}
	long := make([]int32, 5000)
	for i := range long {
		long[i] = int32(i)
	}
	if HashIDs(long) == HashIDs(long[:4999]) {
		t.Error("hash ignores the last id of a long list")
	}
}

func TestResolveBackend(t *testing.T) {
	if _, err := ResolveBackend("rust"); err == nil {
		t.Error("unknown backend accepted")
	}
	if got, err := ResolveBackend(BackendAuto); err != nil || got != BackendAuto {
		t.Fatalf("auto = %s, %v", got, err)
	}
	if !hfBuiltIn {
		if _, err := ResolveBackend(BackendHF); !errors.Is(err, ErrBackendUnavailable) {
			t.Errorf("hf without cgo: err = %v, want ErrBackendUnavailable", err)
		}
	}
}

// "auto" takes the pure-Go backend for what it implements (the built-in
// tokenizer) and the Rust library, where built in, for the rest.
func TestAutoPicksTheBackendPerFile(t *testing.T) {
	tok, err := Open("", BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if b := tok.Info().Backend; b != BackendGo {
		t.Errorf("built-in tokenizer: auto took %s", b)
	}
	const wordPiece = `{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100},
		"pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}}`
	wp, err := OpenBytes([]byte(wordPiece), "wordpiece", BackendAuto)
	switch {
	case hfBuiltIn && (err != nil || wp.Info().Backend != BackendHF):
		t.Errorf("WordPiece with hf built in: %v", err)
	case !hfBuiltIn && !errors.Is(err, ErrUnsupported):
		t.Errorf("WordPiece without hf: %v", err)
	}
	if wp != nil {
		wp.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path string
	}{
		{"missing file", filepath.Join(dir, "nope.json")},
		{"empty file", write("empty.json", "")},
		{"not json", write("bad.json", "{not json")},
		{"truncated", write("trunc.json", `{"model": {"type": "BPE", "vocab": {"a": 0`)},
		{"no model", write("nomodel.json", `{"added_tokens": []}`)},
		{"negative id", write("neg.json", `{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}`)},
		{"bad merge", write("merge.json", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]},
			"pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}}`)},
	}
	for _, backend := range Backends() {
		for _, c := range cases {
			tok, err := Open(c.path, backend)
			if err == nil {
				tok.Close()
				t.Errorf("%s/%s: Open succeeded", backend, c.name)
				continue
			}
			if c.name == "missing file" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/%s: error %v does not wrap os.ErrNotExist", backend, c.name, err)
			}
		}
	}
}

// A tokenizer.json the pure-Go backend does not implement is refused with
// ErrUnsupported, not misread.
func TestGoBackendRefusesUnsupported(t *testing.T) {
	const wordPiece = `{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"},
		"pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "WordPiece", "prefix": "##"}}`
	_, err := OpenBytes([]byte(wordPiece), "wordpiece", BackendGo)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("WordPiece: err = %v, want ErrUnsupported", err)
	}
	const otherRegex = `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
		"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
			{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
			{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
		"decoder": {"type": "ByteLevel"}}`
	_, err = OpenBytes([]byte(otherRegex), "regex", BackendGo)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `\\w+`) {
		t.Errorf("unknown regex: err = %v, want ErrUnsupported naming the pattern", err)
	}
}

func TestBadInput(t *testing.T) {
	for _, backend := range Backends() {
		t.Run(backend, func(t *testing.T) {
			tok := openShared(t, backend)
			if _, err := tok.Encode("ok \xff\xfe"); !errors.Is(err, ErrInvalidUTF8) {
				t.Errorf("Encode(invalid UTF-8): err = %v, want ErrInvalidUTF8", err)
			}
			n := int32(tok.VocabSize())
			for _, ids := range [][]int32{{-1}, {0, n}, {1 << 30}, {9707, 151665}} {
				if _, err := tok.Decode(ids); !errors.Is(err, ErrUnknownID) {
					t.Errorf("Decode(%v): err = %v, want ErrUnknownID", ids, err)
				}
			}
			if text, err := tok.Decode(nil); err != nil || text != "" {
				t.Errorf("Decode(nil) = %q, %v", text, err)
			}
			if ids, err := tok.Encode(""); err != nil || len(ids) != 0 {
				t.Errorf("Encode(\"\") = %v, %v", ids, err)
			}
		})
	}
}

func TestCloseAndInfo(t *testing.T) {
	for _, backend := range Backends() {
		tok, err := Open("", backend)
		if err != nil {
			t.Fatal(err)
		}
		info := tok.Info()
		if info.Backend != backend || info.Source != DefaultSource || len(info.SHA256) != 64 {
			t.Errorf("Info() = %+v", info)
		}
		added := tok.AddedTokens()
		if len(added) != 22 || added[0].Content != "<|endoftext|>" || !added[0].Special ||
			added[14].Content != "<tool_call>" || added[14].Special {
			t.Errorf("AddedTokens() = %+v", added)
		}
		if n, err := tok.Count("Hello world"); err != nil || n != 2 {
			t.Errorf("Count = %d, %v; want 2", n, err)
		}
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := tok.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := tok.Encode("x"); !errors.Is(err, ErrClosed) {
			t.Errorf("Encode after Close: err = %v, want ErrClosed", err)
		}
		if _, err := tok.Decode([]int32{1}); !errors.Is(err, ErrClosed) {
			t.Errorf("Decode after Close: err = %v, want ErrClosed", err)
		}
	}
}

// Any tokenizer.json path works. tiny-bpe.json is a GPT-2 style tokenizer
// (ByteLevel pre-tokenizer with its own regex); the ids were computed by
// Hugging Face tokenizers.
func TestOpenFile(t *testing.T) {
	path := filepath.Join("..", "testdata", "tokenizer", "tiny-bpe.json")
	cases := []struct {
		text string
		ids  []int32
	}{
		{"abab ab", []int32{257, 258}},
		{"ab  cd<eos>x's", []int32{256, 32, 32, 261, 262, 120, 39, 115}},
		{"    ab", []int32{259, 32, 258}},
	}
	for _, backend := range Backends() {
		tok, err := Open(path, backend)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		for _, c := range cases {
			ids, err := tok.Encode(c.text)
			if err != nil || !slices.Equal(ids, c.ids) {
				t.Errorf("%s: Encode(%q) = %v, %v; want %v", backend, c.text, ids, err, c.ids)
			}
			text, err := tok.Decode(c.ids)
			if err != nil || text != c.text {
				t.Errorf("%s: Decode(%v) = %q, %v", backend, c.ids, text, err)
			}
		}
		if tok.Info().Source != path || tok.VocabSize() != 263 {
			t.Errorf("%s: Info() = %+v, VocabSize() = %d", backend, tok.Info(), tok.VocabSize())
		}
		tok.Close()
	}
}

// Opening does only what encoding needs: the hf backend leaves the Go-side
// parse of tokenizer.json (for Decode's checks) until Decode, and a file's
// checksum is computed when Info is first asked for, not at every start.
func TestOpenDoesOnlyWhatEncodingNeeds(t *testing.T) {
	if hfBuiltIn {
		tok, err := Open("", BackendHF)
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		if tok.(*tokenizer).parsed != nil {
			t.Error("the hf backend parsed tokenizer.json in Go at open")
		}
		if _, err := tok.Encode("hello"); err != nil || tok.(*tokenizer).parsed != nil {
			t.Errorf("encoding parsed tokenizer.json in Go (%v)", err)
		}
		if _, err := tok.Decode([]int32{1}); err != nil || tok.(*tokenizer).parsed == nil {
			t.Errorf("decode: %v", err)
		}
	}
	path := filepath.Join("..", "testdata", "tokenizer", "tiny-bpe.json")
	tok, err := Open(path, BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if tok.(*tokenizer).sum != "" {
		t.Error("the checksum was computed at open")
	}
	if tok.Info().SHA256 == "" || tok.(*tokenizer).sum == "" {
		t.Error("Info has no checksum")
	}
}
