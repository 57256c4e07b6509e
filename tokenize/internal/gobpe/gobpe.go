// Package gobpe is a pure-Go implementation of Hugging Face byte-level BPE
// tokenizers (Qwen2/2.5/3, Llama 3, GPT-2 style), built to give the same
// token ids as the Rust library. It supports the tokenizer.json features
// those models use and refuses the others with an error naming the feature.
//
// The encoding pipeline mirrors Hugging Face's:
//
//  1. added tokens are cut out of the raw text (leftmost-longest);
//  2. each remaining piece is normalized (NFC) on its own, then added
//     tokens marked "normalized" are cut out of it;
//  3. the pre-tokenizer splits pieces into words;
//  4. each word's bytes are merged by BPE rank.
package gobpe

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lmdrive/lmdrive/tokenize/internal/tokjson"
)

// ErrUnsupported marks a tokenizer.json feature this backend does not
// implement.
var ErrUnsupported = errors.New("not supported by the pure-Go backend")

// Tokenizer encodes and decodes with one tokenizer.json. It is safe for
// concurrent use.
type Tokenizer struct {
	normalize   func(string) string // nil: no normalizer
	rawAdded    *matcher            // added tokens matched before normalization
	normAdded   *matcher            // added tokens matched after it
	prefixSpace bool                // ByteLevel add_prefix_space
	splitter    splitter
	model       *bpe

	tokenBytes [][]byte // decoded bytes of every id; nil where no token
	vocabSize  int      // distinct tokens, added ones included
}

// New builds a tokenizer from a parsed tokenizer.json.
func New(f *tokjson.File) (*Tokenizer, error) {
	t := &Tokenizer{}
	if err := t.setNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.setPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	bl := newByteLevel()
	vocab, err := t.setModel(&f.Model, bl)
	if err != nil {
		return nil, err
	}
	t.setAddedTokens(f.AddedTokens, vocab, bl)
	return t, nil
}

func (t *Tokenizer) setNormalizer(raw []byte) error {
	c, err := tokjson.ParseComponent(raw)
	if err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	if c == nil {
		return nil
	}
	switch c.Type {
	case "NFC":
		t.normalize = nfc
		return nil
	case "Sequence":
		var parts []func(string) string
		for _, m := range c.Normalizers {
			sub := &Tokenizer{}
			if err := sub.setNormalizer(m); err != nil {
				return err
			}
			if sub.normalize != nil {
				parts = append(parts, sub.normalize)
			}
		}
		switch len(parts) {
		case 0:
		case 1:
			t.normalize = parts[0]
		default:
			t.normalize = func(s string) string {
				for _, p := range parts {
					s = p(s)
				}
				return s
			}
		}
		return nil
	}
	return fmt.Errorf("normalizer %q: %w", c.Type, ErrUnsupported)
}

func (t *Tokenizer) setPreTokenizer(raw []byte) error {
	c, err := tokjson.ParseComponent(raw)
	if err != nil {
		return fmt.Errorf("pre-tokenizer: %w", err)
	}
	if c == nil {
		return fmt.Errorf("no pre-tokenizer: %w (byte-level BPE needs one)", ErrUnsupported)
	}
	switch c.Type {
	case "ByteLevel":
		// ByteLevel on its own splits with the GPT-2 pattern unless told not to.
		if c.UseRegex == nil || *c.UseRegex {
			t.splitter = gpt2Splitter{}
		}
		t.prefixSpace = c.AddPrefixSpace
		return nil
	case "Sequence":
		// The one shape in use: Split(regex) followed by ByteLevel without
		// its own regex.
		if len(c.Pretokenizers) != 2 {
			return fmt.Errorf("pre-tokenizer sequence of %d steps: %w", len(c.Pretokenizers), ErrUnsupported)
		}
		split, err := tokjson.ParseComponent(c.Pretokenizers[0])
		if err != nil {
			return fmt.Errorf("pre-tokenizer: %w", err)
		}
		bytes, err := tokjson.ParseComponent(c.Pretokenizers[1])
		if err != nil {
			return fmt.Errorf("pre-tokenizer: %w", err)
		}
		if split == nil || split.Type != "Split" || bytes == nil || bytes.Type != "ByteLevel" ||
			(bytes.UseRegex != nil && *bytes.UseRegex) {
			return fmt.Errorf("pre-tokenizer sequence other than Split then ByteLevel: %w", ErrUnsupported)
		}
		if split.Behavior != "Isolated" || split.Invert || split.Pattern == nil || split.Pattern.Regex == nil {
			return fmt.Errorf("pre-tokenizer Split with behavior %q: %w", split.Behavior, ErrUnsupported)
		}
		switch *split.Pattern.Regex {
		case qwenPattern:
			t.splitter = qwenSplitter{maxDigits: 1}
		case llama3Pattern:
			t.splitter = qwenSplitter{maxDigits: 3}
		case gpt2Pattern:
			t.splitter = gpt2Splitter{}
		default:
			return fmt.Errorf("pre-tokenizer regex %q: %w", *split.Pattern.Regex, ErrUnsupported)
		}
		if bytes.AddPrefixSpace {
			// Hugging Face would prefix every word, not every piece.
			return fmt.Errorf("ByteLevel add_prefix_space after Split: %w", ErrUnsupported)
		}
		return nil
	}
	return fmt.Errorf("pre-tokenizer %q: %w", c.Type, ErrUnsupported)
}

func checkDecoder(raw []byte) error {
	c, err := tokjson.ParseComponent(raw)
	if err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	if c == nil || c.Type != "ByteLevel" {
		name := "none"
		if c != nil {
			name = c.Type
		}
		return fmt.Errorf("decoder %q: %w (only ByteLevel is)", name, ErrUnsupported)
	}
	return nil
}

// setModel loads the BPE vocabulary and merges and returns the vocabulary.
func (t *Tokenizer) setModel(m *tokjson.Model, bl *byteLevel) (map[string]int32, error) {
	if m.Type != "BPE" && m.Type != "" {
		return nil, fmt.Errorf("model %q: %w", m.Type, ErrUnsupported)
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return nil, fmt.Errorf("BPE dropout: %w", ErrUnsupported)
	}
	if m.ByteFallback {
		return nil, fmt.Errorf("BPE byte_fallback: %w", ErrUnsupported)
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") ||
		(m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, fmt.Errorf("BPE subword prefix or suffix: %w", ErrUnsupported)
	}
	vocab, err := m.VocabMap()
	if err != nil {
		return nil, err
	}
	merges, err := m.MergeList()
	if err != nil {
		return nil, err
	}
	model := &bpe{
		merges:       make(map[uint64]mergeRule, len(merges)),
		ignoreMerges: m.IgnoreMerges,
		unkID:        -1,
		fuseUnk:      m.FuseUnk,
		cache:        make(map[string][]int32),
	}
	for rank, mg := range merges {
		left, ok := vocab[mg.Left]
		if !ok {
			return nil, fmt.Errorf("merge %d: token %q is not in the vocabulary", rank, mg.Left)
		}
		right, ok := vocab[mg.Right]
		if !ok {
			return nil, fmt.Errorf("merge %d: token %q is not in the vocabulary", rank, mg.Right)
		}
		merged, ok := vocab[mg.Left+mg.Right]
		if !ok {
			return nil, fmt.Errorf("merge %d: token %q is not in the vocabulary", rank, mg.Left+mg.Right)
		}
		model.merges[pairKey(left, right)] = mergeRule{rank: int32(rank), id: merged}
	}
	for b := 0; b < 256; b++ {
		id, ok := vocab[string(bl.toRune[b])]
		if !ok {
			id = -1
		}
		model.byteID[b] = id
	}
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unknown token %q is not in the vocabulary", *m.UnkToken)
		}
		model.unkID = id
	}
	var maxID int32 = -1
	for _, id := range vocab {
		maxID = max(maxID, id)
	}
	t.tokenBytes = make([][]byte, maxID+1)
	if m.IgnoreMerges {
		model.wholeWord = make(map[string]int32, len(vocab))
	}
	for tok, id := range vocab {
		raw, ok := bl.decode(tok)
		t.tokenBytes[id] = raw
		if ok && model.wholeWord != nil {
			model.wholeWord[string(raw)] = id
		}
	}
	t.model = model
	t.vocabSize = len(vocab)
	return vocab, nil
}

func (t *Tokenizer) setAddedTokens(tokens []tokjson.AddedToken, vocab map[string]int32, bl *byteLevel) {
	var raw, norm []addedToken
	for _, a := range tokens {
		at := addedToken{id: a.ID, content: a.Content, singleWord: a.SingleWord, lstrip: a.LStrip, rstrip: a.RStrip}
		if a.Normalized {
			if t.normalize != nil {
				at.content = t.normalize(at.content)
			}
			norm = append(norm, at)
		} else {
			raw = append(raw, at)
		}
		if _, inVocab := vocab[a.Content]; !inVocab {
			t.vocabSize++
		}
		if int(a.ID) >= len(t.tokenBytes) {
			grown := make([][]byte, a.ID+1)
			copy(grown, t.tokenBytes)
			t.tokenBytes = grown
		}
		// An added token decodes like any other token: through the
		// byte-level table when all its characters are in it.
		b, _ := bl.decode(a.Content)
		t.tokenBytes[a.ID] = b
	}
	t.rawAdded = newMatcher(raw)
	t.normAdded = newMatcher(norm)
}

// VocabSize returns the number of distinct tokens, added tokens included
// (Hugging Face's get_vocab_size(with_added_tokens=True)).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// ErrInvalidUTF8 reports text that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// Encode returns the token ids of text without adding any special tokens.
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	if !utf8.ValidString(text) {
		return nil, ErrInvalidUTF8
	}
	ids := make([]int32, 0, len(text)/3+1)
	var pieces, sub []piece
	pieces = t.rawAdded.split(text, pieces)
	for _, p := range pieces {
		if p.id >= 0 {
			ids = append(ids, p.id)
			continue
		}
		s := p.text
		if t.normalize != nil {
			s = t.normalize(s)
		}
		sub = t.normAdded.split(s, sub[:0])
		for _, q := range sub {
			if q.id >= 0 {
				ids = append(ids, q.id)
				continue
			}
			ids = t.encodePiece(ids, q.text)
		}
	}
	return ids, nil
}

func (t *Tokenizer) encodePiece(ids []int32, s string) []int32 {
	if s == "" {
		return ids
	}
	if t.prefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if t.splitter == nil {
		return t.model.appendWord(ids, s)
	}
	t.splitter.split(s, func(word string) {
		ids = t.model.appendWord(ids, word)
	})
	return ids
}

// ErrUnknownID reports a token id outside the vocabulary.
var ErrUnknownID = errors.New("token id is not in the vocabulary")

// Decode returns the text of ids, special tokens included. Bytes that do
// not form valid UTF-8 become U+FFFD, one per maximal invalid subpart.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	n := 0
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.tokenBytes) || t.tokenBytes[id] == nil {
			return "", fmt.Errorf("id %d at position %d: %w", id, i, ErrUnknownID)
		}
		n += len(t.tokenBytes[id])
	}
	raw := make([]byte, 0, n)
	for _, id := range ids {
		raw = append(raw, t.tokenBytes[id]...)
	}
	if utf8.Valid(raw) {
		return string(raw), nil
	}
	return string(appendLossy(make([]byte, 0, len(raw)+8), raw)), nil
}
