// Package tokenize turns prompt text into token ids exactly as Hugging Face
// tokenizers does, and generated ids back into text.
//
// Open loads a tokenizer: the built-in Qwen2.5 tokenizer when the path is
// empty, or any Hugging Face tokenizer.json file. Two backends implement
// the Tokenizer interface:
//
//   - "hf": Hugging Face's Rust tokenizers library through cgo
//     (github.com/daulet/tokenizers, linked against libtokenizers.a, which
//     `make` builds). It handles every tokenizer.json.
//   - "go": a pure-Go byte-level BPE implementation for builds without cgo.
//     It covers the byte-level BPE tokenizers of Qwen2/2.5/3, Llama 3 and
//     GPT-2 and gives the same ids as "hf" (checked against golden ids and
//     by a fuzz test); other tokenizer.json files are refused with an error.
//
// "auto" picks "go" for every tokenizer.json it implements (identical ids,
// faster to load and to encode) and "hf", where built in, for the others.
// Builds without cgo, or with the build tag lmdrive_nohf, leave "hf" out.
//
//	tok, err := tokenize.Open("", tokenize.BackendAuto) // built-in Qwen2.5
//	if err != nil { ... }
//	defer tok.Close()
//	ids, err := tok.Encode("Hello")
//	text, err := tok.Decode(ids)
//
// Encode never adds special tokens of its own (no BOS/EOS, no template);
// added tokens written in the text, such as <|im_start|>, are recognized
// as single tokens. Decode keeps special tokens as their text. Invalid
// input is an error, never a panic: text that is not UTF-8 (ErrInvalidUTF8)
// and ids outside the vocabulary (ErrUnknownID).
//
// StreamDecoder turns ids into text one at a time for reports, holding back
// an incomplete UTF-8 character until its last byte arrives.
// HashIDs gives the identity of a prompt ("sha256:<hex>" over the ids as
// little-endian int32), recorded with every result so that engines are
// compared on identical input.
//
// Package prompt builds prompts of an exact token length on top of this
// package.
package tokenize

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// Tokenizer encodes text to token ids and decodes ids to text. All methods
// are safe for concurrent use; after Close they return ErrClosed.
type Tokenizer interface {
	// Encode returns the token ids of text, adding no special tokens.
	Encode(text string) ([]int32, error)
	// Decode returns the text of ids, special tokens included. Bytes that
	// do not form valid UTF-8 become U+FFFD, one per maximal invalid
	// subpart, as in Hugging Face.
	Decode(ids []int32) (string, error)
	// Count returns the number of tokens Encode would return.
	Count(text string) (int, error)
	// AddedTokens lists the added tokens (special ones and others) by id.
	AddedTokens() []AddedToken
	// VocabSize is the number of distinct tokens, added tokens included
	// (Hugging Face's get_vocab_size(with_added_tokens=True)).
	VocabSize() int
	// Info tells which backend and which tokenizer.json this is.
	Info() Info
	// Close releases the tokenizer (native memory for "hf").
	Close() error
}

// AddedToken is a token matched whole in the text, before normalization
// and pre-tokenization.
type AddedToken struct {
	ID      int32
	Content string
	// Special tokens (such as <|im_end|>) control the model rather than
	// stand for text; tools commonly hide them, reports show them.
	Special bool
}

// Info identifies a loaded tokenizer for results and reports.
type Info struct {
	Backend string // "hf" or "go"
	Source  string // file path, or the name of the built-in tokenizer
	SHA256  string // of the tokenizer.json bytes, hex
}

// Errors returned by tokenizers; test with errors.Is.
var (
	ErrClosed             = errors.New("tokenizer is closed")
	ErrInvalidUTF8        = errors.New("text is not valid UTF-8")
	ErrUnknownID          = errors.New("token id is not in the vocabulary")
	ErrBackendUnavailable = errors.New("tokenizer backend is not available in this build")
	ErrUnsupported        = errors.New("tokenizer.json is not supported by this backend")
)

// HashIDs returns "sha256:<hex>" of ids written as little-endian int32.
// Equal hashes mean an engine was given the identical prompt.
func HashIDs(ids []int32) string {
	h := sha256.New()
	var buf [4 * 1024]byte
	for len(ids) > 0 {
		n := min(len(ids), len(buf)/4)
		for i, id := range ids[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], uint32(id))
		}
		h.Write(buf[:4*n])
		ids = ids[n:]
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
