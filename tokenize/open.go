package tokenize

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/lmdrive/lmdrive/tokenize/internal/defaultdata"
	"github.com/lmdrive/lmdrive/tokenize/internal/gobpe"
	"github.com/lmdrive/lmdrive/tokenize/internal/tokjson"
)

// Backend names accepted by Open.
const (
	// BackendAuto is "go" for every tokenizer.json the pure-Go backend
	// implements (identical ids, a fraction of the start-up and encoding
	// time), else "hf" where it is built in.
	BackendAuto = "auto"
	BackendHF   = "hf" // Hugging Face's Rust library (cgo)
	BackendGo   = "go" // pure Go
)

// DefaultSource names the built-in tokenizer in Info.Source.
const DefaultSource = defaultdata.Name

// Backends lists the backends compiled into this binary, preferred first.
func Backends() []string {
	if hfBuiltIn {
		return []string{BackendHF, BackendGo}
	}
	return []string{BackendGo}
}

// ResolveBackend checks that name selects a backend of this build: "auto"
// (returned as is: Open decides per file), "go", or "hf" where built in.
func ResolveBackend(name string) (string, error) {
	switch name {
	case "", BackendAuto:
		return BackendAuto, nil
	case BackendGo:
		return BackendGo, nil
	case BackendHF:
		if !hfBuiltIn {
			return "", fmt.Errorf("backend %q: %w (built without cgo or with the lmdrive_nohf tag; use %q)",
				name, ErrBackendUnavailable, BackendGo)
		}
		return BackendHF, nil
	}
	return "", fmt.Errorf("unknown tokenizer backend %q (want %q, %q or %q)", name, BackendAuto, BackendHF, BackendGo)
}

// Open loads the tokenizer.json at path, or the built-in Qwen2.5 tokenizer
// when path is empty, with the named backend ("auto", "hf" or "go").
func Open(path, backend string) (Tokenizer, error) {
	if path == "" {
		data, err := defaultdata.TokenizerJSON()
		if err != nil {
			return nil, err
		}
		// Its checksum is known (and checked by a test): no need to hash
		// 11 MB at every start.
		return openBytes(data, DefaultSource, defaultdata.SHA256, backend)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokenizer: %w", err)
	}
	return openBytes(data, path, "", backend)
}

// OpenBytes loads a tokenizer from tokenizer.json bytes; source names it in
// Info and in errors.
func OpenBytes(data []byte, source, backend string) (Tokenizer, error) {
	return openBytes(data, source, "", backend)
}

// openBytes does only what the backend needs to encode: the hf backend
// parses the file in Rust alone, and the Go-side reading of the vocabulary
// (for Decode's checks and AddedTokens) and the checksum (for Info) wait
// until first asked for. sum, if known, is the hex SHA-256 of data.
func openBytes(data []byte, source, sum, backend string) (Tokenizer, error) {
	name, err := ResolveBackend(backend)
	if err != nil {
		return nil, err
	}
	if name == BackendAuto {
		tok, err := openBytes(data, source, sum, BackendGo)
		if errors.Is(err, ErrUnsupported) && hfBuiltIn {
			return openBytes(data, source, sum, BackendHF)
		}
		return tok, err
	}
	t := &tokenizer{data: data, sum: sum, info: Info{Backend: name, Source: source}}
	switch name {
	case BackendGo:
		file, err := t.file()
		if err != nil {
			return nil, err
		}
		g, err := gobpe.New(file)
		if err != nil {
			if errors.Is(err, gobpe.ErrUnsupported) {
				err = fmt.Errorf("%w: %w", ErrUnsupported, err)
			}
			return nil, fmt.Errorf("tokenizer %s, backend go: %w", source, err)
		}
		t.engine = goEngine{g}
	case BackendHF:
		// The Rust library aborts the process on some bad input (a
		// truncated file among them: found by FuzzOpenTokenizerJSON).
		if err := tokjson.CheckSyntax(data); err != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", source, err)
		}
		e, err := newHFEngine(data, t.byteLevelDecoder)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s, backend hf: %w", source, err)
		}
		t.engine = e
	}
	return t, nil
}

// engine is what a backend provides; tokenizer adds input checks, the
// closed state and the shared metadata.
type engine interface {
	encode(text string) ([]int32, error)
	decode(ids []int32) (string, error)
	vocabSize() int
	close() error
}

type tokenizer struct {
	mu     sync.RWMutex
	engine engine // nil once closed
	info   Info   // SHA256 filled in by Info
	data   []byte // the tokenizer.json
	sum    string // its SHA-256, once known
	sumMu  sync.Mutex

	parseOnce sync.Once
	parsed    *tokjson.File
	parseErr  error

	vocabOnce sync.Once
	vocabErr  error
	added     []AddedToken
	known     []bool // known[id]: id names a token
}

// file parses the tokenizer.json once, when first needed.
func (t *tokenizer) file() (*tokjson.File, error) {
	t.parseOnce.Do(func() {
		t.parsed, t.parseErr = tokjson.Parse(t.data)
		if t.parseErr != nil {
			t.parseErr = fmt.Errorf("tokenizer %s: %w", t.info.Source, t.parseErr)
		}
	})
	return t.parsed, t.parseErr
}

func (t *tokenizer) byteLevelDecoder() bool {
	f, err := t.file()
	return err == nil && f.HasByteLevelDecoder()
}

// vocabulary reads which ids name tokens, and the added tokens, once.
func (t *tokenizer) vocabulary() error {
	t.vocabOnce.Do(func() {
		f, err := t.file()
		if err != nil {
			t.vocabErr = err
			return
		}
		_, present, err := f.Model.TokensByID()
		if err != nil {
			t.vocabErr = fmt.Errorf("tokenizer %s: %w", t.info.Source, err)
			return
		}
		for _, a := range f.SortedAddedTokens() {
			t.added = append(t.added, AddedToken{ID: a.ID, Content: a.Content, Special: a.Special})
			if int(a.ID) >= len(present) {
				grown := make([]bool, a.ID+1)
				copy(grown, present)
				present = grown
			}
			present[a.ID] = true
		}
		t.known = present
	})
	return t.vocabErr
}

func (t *tokenizer) Encode(text string) ([]int32, error) {
	if !utf8.ValidString(text) {
		return nil, ErrInvalidUTF8
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.engine == nil {
		return nil, ErrClosed
	}
	return t.engine.encode(text)
}

func (t *tokenizer) Count(text string) (int, error) {
	ids, err := t.Encode(text)
	return len(ids), err
}

func (t *tokenizer) Decode(ids []int32) (string, error) {
	if err := t.vocabulary(); err != nil {
		return "", err
	}
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.known) || !t.known[id] {
			return "", fmt.Errorf("id %d at position %d: %w", id, i, ErrUnknownID)
		}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.engine == nil {
		return "", ErrClosed
	}
	if len(ids) == 0 {
		return "", nil
	}
	return t.engine.decode(ids)
}

func (t *tokenizer) AddedTokens() []AddedToken {
	if t.vocabulary() != nil {
		return nil
	}
	return append([]AddedToken(nil), t.added...)
}

func (t *tokenizer) VocabSize() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.engine == nil {
		return 0
	}
	return t.engine.vocabSize()
}

func (t *tokenizer) Info() Info {
	t.sumMu.Lock()
	defer t.sumMu.Unlock()
	if t.sum == "" {
		sum := sha256.Sum256(t.data)
		t.sum = hex.EncodeToString(sum[:])
	}
	info := t.info
	info.SHA256 = t.sum
	return info
}

func (t *tokenizer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.engine == nil {
		return nil
	}
	err := t.engine.close()
	t.engine = nil
	return err
}

// goEngine adapts the pure-Go backend.
type goEngine struct{ t *gobpe.Tokenizer }

func (g goEngine) encode(text string) ([]int32, error) { return g.t.Encode(text) }
func (g goEngine) decode(ids []int32) (string, error)  { return g.t.Decode(ids) }
func (g goEngine) vocabSize() int                      { return g.t.VocabSize() }
func (g goEngine) close() error                        { return nil }
