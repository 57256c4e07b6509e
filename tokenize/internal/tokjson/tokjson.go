// Package tokjson reads the parts of a Hugging Face tokenizer.json file that
// lmdrive needs: the model's vocabulary and merges, the added tokens, and the
// configuration of the normalizer, pre-tokenizer and decoder.
//
// It only parses; deciding whether a configuration is supported is left to
// the backends.
package tokjson

import (
	"bytes"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"sort"
	"strings"
)

// File is a parsed tokenizer.json.
type File struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         Model           `json:"model"`
}

// AddedToken is one entry of "added_tokens".
type AddedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// Model is the "model" object. Vocab and Merges stay raw because their
// shape depends on the model type.
type Model struct {
	Type                    string          `json:"type"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Dropout                 *float64        `json:"dropout"`

	vocab map[string]int32 // VocabMap's result, kept for later calls
}

// Component is the common head of normalizer, pre-tokenizer and decoder
// objects. The remaining fields used by the supported kinds are listed too;
// a kind leaves the others at their zero values.
type Component struct {
	Type string `json:"type"`

	// Sequence members: normalizers use "normalizers", pre-tokenizers
	// "pretokenizers", decoders "decoders".
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`

	// Split pre-tokenizer.
	Pattern  *Pattern `json:"pattern"`
	Behavior string   `json:"behavior"`
	Invert   bool     `json:"invert"`

	// ByteLevel pre-tokenizer and decoder.
	AddPrefixSpace bool  `json:"add_prefix_space"`
	TrimOffsets    bool  `json:"trim_offsets"`
	UseRegex       *bool `json:"use_regex"`
}

// Pattern is a Split pattern: either a literal string or a regex.
type Pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// MaxDepth bounds how deeply tokenizer.json may nest. Real files nest a
// handful of levels; Hugging Face's Rust library aborts the whole process
// (a panic that cannot unwind through its C interface) on some inputs its
// JSON reader refuses, its recursion limit of 128 among them.
const MaxDepth = 100

// CheckSyntax checks, without parsing into values, that data is one JSON
// object nested at most MaxDepth deep: what must hold before the bytes are
// handed to the Rust library, which does not survive a truncated file.
func CheckSyntax(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("tokenizer.json is empty")
	}
	if !json.Valid(data) {
		var v json.RawMessage
		err := json.Unmarshal(data, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return fmt.Errorf("tokenizer.json is not valid JSON (cut short?): %w", err)
	}
	if first := bytes.TrimSpace(data)[0]; first != '{' {
		return errors.New("tokenizer.json is not a JSON object")
	}
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("tokenizer.json nests more than %d levels deep", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Parse decodes tokenizer.json bytes.
func Parse(data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("tokenizer.json is empty")
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if f.Model.Type == "" && len(f.Model.Vocab) == 0 {
		return nil, errors.New("tokenizer.json has no model")
	}
	for _, t := range f.AddedTokens {
		if t.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q has negative id %d", t.Content, t.ID)
		}
		if t.Content == "" {
			return nil, fmt.Errorf("tokenizer.json: added token %d has empty content", t.ID)
		}
	}
	return &f, nil
}

// ParseComponent decodes one normalizer, pre-tokenizer or decoder object.
// A JSON null gives (nil, nil).
func ParseComponent(raw json.RawMessage) (*Component, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var c Component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse component: %w", err)
	}
	if c.Type == "" {
		return nil, errors.New("component has no type")
	}
	return &c, nil
}

// VocabMap returns the model vocabulary of BPE, WordPiece and WordLevel
// models (a JSON object from token to id). The map is parsed once and
// shared by later calls; callers must not modify it.
func (m *Model) VocabMap() (map[string]int32, error) {
	if m.vocab != nil {
		return m.vocab, nil
	}
	if len(m.Vocab) == 0 || m.Vocab[0] != '{' {
		return nil, fmt.Errorf("model %q: vocab is not an object", m.Type)
	}
	var v map[string]int32
	if err := json.Unmarshal(m.Vocab, &v); err != nil {
		return nil, fmt.Errorf("model %q: vocab: %w", m.Type, err)
	}
	for tok, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("model %q: token %q has negative id %d", m.Type, tok, id)
		}
	}
	m.vocab = v
	return v, nil
}

// TokensByID lists the model's tokens indexed by id; ids with no token are
// marked absent in the second slice. It handles both object vocabularies and
// Unigram's list of [piece, score] pairs.
func (m *Model) TokensByID() (tokens []string, present []bool, err error) {
	if len(m.Vocab) > 0 && m.Vocab[0] == '[' {
		var pairs []json.RawMessage
		if err := json.Unmarshal(m.Vocab, &pairs); err != nil {
			return nil, nil, fmt.Errorf("model %q: vocab: %w", m.Type, err)
		}
		tokens = make([]string, len(pairs))
		present = make([]bool, len(pairs))
		for i, p := range pairs {
			var entry []json.RawMessage
			if err := json.Unmarshal(p, &entry); err != nil || len(entry) == 0 {
				return nil, nil, fmt.Errorf("model %q: vocab entry %d is not a [piece, score] pair", m.Type, i)
			}
			if err := json.Unmarshal(entry[0], &tokens[i]); err != nil {
				return nil, nil, fmt.Errorf("model %q: vocab entry %d: %w", m.Type, i, err)
			}
			present[i] = true
		}
		return tokens, present, nil
	}
	v, err := m.VocabMap()
	if err != nil {
		return nil, nil, err
	}
	var maxID int32 = -1
	for _, id := range v {
		maxID = max(maxID, id)
	}
	tokens = make([]string, maxID+1)
	present = make([]bool, maxID+1)
	for tok, id := range v {
		tokens[id] = tok
		present[id] = true
	}
	return tokens, present, nil
}

// Merge is one BPE merge rule; its rank is its position in the list.
type Merge struct{ Left, Right string }

// MergeList returns the BPE merges in rank order. Both serializations are
// accepted: "left right" strings and [left, right] pairs.
func (m *Model) MergeList() ([]Merge, error) {
	if len(m.Merges) == 0 || string(bytes.TrimSpace(m.Merges)) == "null" {
		return nil, nil
	}
	// The pair form first: it is the common one and decodes fastest.
	var pairs [][]string
	if err := json.Unmarshal(m.Merges, &pairs); err == nil {
		out := make([]Merge, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("model %q: merge %d is not a pair of strings", m.Type, i)
			}
			out[i] = Merge{p[0], p[1]}
		}
		return out, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(m.Merges, &raw); err != nil {
		return nil, fmt.Errorf("model %q: merges: %w", m.Type, err)
	}
	out := make([]Merge, 0, len(raw))
	for i, r := range raw {
		switch {
		case len(r) > 0 && r[0] == '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, fmt.Errorf("model %q: merge %d: %w", m.Type, i, err)
			}
			if strings.HasPrefix(s, "#version") {
				continue
			}
			left, right, ok := cutSpace(s)
			if !ok {
				return nil, fmt.Errorf("model %q: merge %d %q is not two tokens separated by one space", m.Type, i, s)
			}
			out = append(out, Merge{left, right})
		case len(r) > 0 && r[0] == '[':
			var pair []string
			if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("model %q: merge %d is not a pair of strings", m.Type, i)
			}
			out = append(out, Merge{pair[0], pair[1]})
		default:
			return nil, fmt.Errorf("model %q: merge %d has an unknown form", m.Type, i)
		}
	}
	return out, nil
}

// cutSpace splits a legacy merge line into its two tokens; like Hugging
// Face, it requires exactly one space.
func cutSpace(s string) (string, string, bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 2 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// SortedAddedTokens returns the added tokens ordered by id.
func (f *File) SortedAddedTokens() []AddedToken {
	out := append([]AddedToken(nil), f.AddedTokens...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// HasByteLevelDecoder reports whether the decoder is ByteLevel.
func (f *File) HasByteLevelDecoder() bool {
	c, err := ParseComponent(f.Decoder)
	return err == nil && c != nil && c.Type == "ByteLevel"
}
