package tokenize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Opening the built-in tokenizer takes a few hundred milliseconds, so the
// tests share one instance per backend.
var shared struct {
	mu   sync.Mutex
	toks map[string]Tokenizer
}

// openShared returns the built-in tokenizer with backend, skipping the test
// when that backend is not compiled in. Tests must not close it.
func openShared(t testing.TB, backend string) Tokenizer {
	t.Helper()
	if _, err := ResolveBackend(backend); err != nil {
		t.Skipf("backend %s: %v", backend, err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if tok, ok := shared.toks[backend]; ok {
		return tok
	}
	tok, err := Open("", backend)
	if err != nil {
		t.Fatalf("Open(default, %s): %v", backend, err)
	}
	if shared.toks == nil {
		shared.toks = map[string]Tokenizer{}
	}
	shared.toks[backend] = tok
	return tok
}

// golden mirrors testdata/tokenizer/golden.json.
type golden struct {
	TokenizersVersion string `json:"tokenizers_version"`
	TokenizerSHA256   string `json:"tokenizer_sha256"`
	VocabSize         int    `json:"vocab_size"`
	Encode            []struct {
		Name string  `json:"name"`
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	} `json:"encode"`
	Decode []struct {
		Name string  `json:"name"`
		IDs  []int32 `json:"ids"`
		Text string  `json:"text"`
	} `json:"decode"`
}

func loadGolden(t testing.TB) *golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizer", "golden.json"))
	if err != nil {
		t.Fatalf("read golden ids: %v", err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("parse golden ids: %v", err)
	}
	return &g
}

// firstDiff returns the index of the first difference of two id lists.
func firstDiff(a, b []int32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }
