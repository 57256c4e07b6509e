//go:build cgo && !lmdrive_nohf

package tokenize

import (
	"errors"
	"fmt"
	"strings"

	hf "github.com/daulet/tokenizers"
)

// hfBuiltIn tells whether the "hf" backend is compiled in.
const hfBuiltIn = true

// hfEngine is the Rust library behind github.com/daulet/tokenizers. Its C
// interface passes text as NUL-terminated strings, so text containing a NUL
// byte cannot be encoded and decoded text containing one cannot come back.
type hfEngine struct {
	t *hf.Tokenizer
	// byteLevel tells whether the decoder is ByteLevel: every token then
	// decodes to at least one character. Asked only when needed.
	byteLevel func() bool
}

func newHFEngine(data []byte, byteLevel func() bool) (engine, error) {
	t, err := hf.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return hfEngine{t: t, byteLevel: byteLevel}, nil
}

var errNUL = errors.New("text contains a NUL byte, which the hf backend cannot pass to the library (the go backend can)")

func (e hfEngine) encode(text string) ([]int32, error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, errNUL
	}
	enc := e.t.EncodeWithOptions(text, false)
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids, nil
}

func (e hfEngine) decode(ids []int32) (string, error) {
	u := make([]uint32, len(ids))
	for i, id := range ids {
		u[i] = uint32(id)
	}
	text := e.t.Decode(u, false)
	if text == "" && e.byteLevel() {
		// The library returns no string when the text would contain a NUL
		// byte; with a byte-level decoder that is the only way to get none.
		return "", errDecodeNUL
	}
	return text, nil
}

var errDecodeNUL = errors.New("the hf backend returned no text: the decoded text contains a NUL byte, which its C interface cannot return (the go backend can)")

func (e hfEngine) vocabSize() int { return int(e.t.VocabSize()) }

func (e hfEngine) close() error { return e.t.Close() }
