// Package prompt builds benchmark prompts of an exact token length and
// hands them over as token ids.
//
// Build either synthesizes natural-looking text from a deterministic
// generator of our own (English, Chinese, code, or a mix of the three) or
// reads the user's text file, encodes it with the given tokenizer and cuts
// the ids to exactly Spec.Tokens. With Spec.ChatTemplate the text is
// wrapped in Qwen's ChatML template and Spec.Tokens still counts every id
// the engine receives; Prompt.TemplateTokens says how many the template
// took. The same spec and tokenizer always give the same ids, and
// Prompt.Hash identifies them ("sha256:<hex>" over little-endian int32).
//
//	tok, _ := tokenize.Open("", tokenize.BackendAuto)
//	p, err := prompt.Build(tok, prompt.Spec{Tokens: 20000, Seed: 1, Mix: prompt.MixMixed})
//	// p.IDs has exactly 20000 ids; p.Description says how it was built.
package prompt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lmdrive/lmdrive/tokenize"
)

// Text mixes the generator can produce.
const (
	MixEnglish = "english"
	MixChinese = "chinese"
	MixCode    = "code"
	MixMixed   = "mixed" // paragraphs of all three, English most often
)

// Mixes lists the accepted Spec.Mix values.
var Mixes = []string{MixEnglish, MixChinese, MixCode, MixMixed}

// Spec says how to build a prompt.
type Spec struct {
	// Tokens is the exact number of ids to produce. With TextFile, 0 means
	// the whole file.
	Tokens int
	// Seed selects the synthesized text; ignored with TextFile.
	Seed uint64
	// Mix is one of Mixes; empty means MixMixed. Ignored with TextFile.
	Mix string
	// TextFile, when set, is the user's text to use instead of synthesized
	// text. It is cut to Tokens; a file that is too short is an error.
	TextFile string
	// ChatTemplate wraps the text as the user turn of Qwen's ChatML
	// template, system turn included, ending with the assistant header.
	ChatTemplate bool
}

// Prompt is a built prompt.
type Prompt struct {
	IDs  []int32 // what the engine receives
	Text string  // the decoded ids, template included
	Hash string  // tokenize.HashIDs(IDs)
	// Description is one line telling how the prompt was built, for results.
	Description string
	// TemplateTokens is the number of ids the chat template added (0 without).
	TemplateTokens int
}

// ChatML pieces of Qwen's default chat template.
const (
	chatSystem = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
	chatSuffix = "<|im_end|>\n<|im_start|>assistant\n"
)

// MaxTokens bounds Spec.Tokens; far beyond any context window in use.
const MaxTokens = 1 << 22

// Build makes the prompt described by spec with tok.
func Build(tok tokenize.Tokenizer, spec Spec) (*Prompt, error) {
	if tok == nil {
		return nil, errors.New("prompt: no tokenizer")
	}
	if spec.Tokens < 0 || spec.Tokens > MaxTokens {
		return nil, fmt.Errorf("prompt: token count %d out of range [0, %d]", spec.Tokens, MaxTokens)
	}
	if spec.TextFile == "" && spec.Tokens == 0 {
		return nil, errors.New("prompt: a token count is needed for synthesized text")
	}
	mix := spec.Mix
	if mix == "" {
		mix = MixMixed
	}
	if spec.TextFile == "" && !validMix(mix) {
		return nil, fmt.Errorf("prompt: unknown mix %q (want one of %s)", spec.Mix, strings.Join(Mixes, ", "))
	}

	var prefix, suffix []int32
	if spec.ChatTemplate {
		var err error
		if prefix, suffix, err = chatIDs(tok); err != nil {
			return nil, err
		}
	}
	overhead := len(prefix) + len(suffix)
	bodyTokens := 0
	if spec.Tokens > 0 {
		bodyTokens = spec.Tokens - overhead
		if bodyTokens <= 0 {
			return nil, fmt.Errorf("prompt: %d tokens leave no room for text after the %d-token chat template", spec.Tokens, overhead)
		}
	}

	wrap := func(body []int32) []int32 {
		ids := make([]int32, 0, overhead+len(body))
		return append(append(append(ids, prefix...), body...), suffix...)
	}
	var body []int32
	var how string
	if spec.TextFile != "" {
		ids, total, err := fileIDs(tok, spec.TextFile, bodyTokens, wrap)
		if err != nil {
			return nil, err
		}
		body = ids
		how = fmt.Sprintf("text file %s (%d tokens) cut to %d tokens", filepath.Base(spec.TextFile), total, len(ids))
		if len(ids) == total {
			how = fmt.Sprintf("text file %s, all %d tokens", filepath.Base(spec.TextFile), total)
		}
	} else {
		ids, err := synthesizeIDs(tok, spec.Seed, mix, bodyTokens, wrap)
		if err != nil {
			return nil, err
		}
		body = ids
		how = fmt.Sprintf("synthetic %s text, seed %d, %d tokens", mix, spec.Seed, len(ids))
	}

	ids := wrap(body)
	text, err := tok.Decode(ids)
	if err != nil {
		return nil, fmt.Errorf("prompt: decode: %w", err)
	}
	if spec.ChatTemplate {
		how += fmt.Sprintf(", in the Qwen ChatML template (+%d tokens)", overhead)
	}
	info := tok.Info()
	how += fmt.Sprintf("; %d prompt tokens; tokenizer %s (%s backend)", len(ids), info.Source, info.Backend)
	return &Prompt{
		IDs:            ids,
		Text:           text,
		Hash:           tokenize.HashIDs(ids),
		Description:    how,
		TemplateTokens: overhead,
	}, nil
}

func validMix(m string) bool {
	for _, x := range Mixes {
		if m == x {
			return true
		}
	}
	return false
}

// chatIDs encodes the template around the user text. The template's
// special tokens must be added tokens of tok.
func chatIDs(tok tokenize.Tokenizer) (prefix, suffix []int32, err error) {
	have := map[string]bool{}
	for _, a := range tok.AddedTokens() {
		have[a.Content] = true
	}
	if !have["<|im_start|>"] || !have["<|im_end|>"] {
		return nil, nil, errors.New("prompt: the chat template needs the tokens <|im_start|> and <|im_end|>, which this tokenizer lacks")
	}
	if prefix, err = tok.Encode(chatSystem); err != nil {
		return nil, nil, fmt.Errorf("prompt: chat template: %w", err)
	}
	if suffix, err = tok.Encode(chatSuffix); err != nil {
		return nil, nil, fmt.Errorf("prompt: chat template: %w", err)
	}
	return prefix, suffix, nil
}

// fileIDs encodes the file and cuts it to n ids (n == 0: keep all), where
// the cut keeps the text's round trip (cutExact). It returns the ids and the
// file's full token count.
func fileIDs(tok tokenize.Tokenizer, path string, n int, wrap func([]int32) []int32) ([]int32, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("prompt: %w", err)
	}
	if !utf8.Valid(data) {
		return nil, 0, fmt.Errorf("prompt: %s is not UTF-8 text", path)
	}
	ids, err := tok.Encode(string(data))
	if err != nil {
		return nil, 0, fmt.Errorf("prompt: encode %s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("prompt: %s has no text", path)
	}
	if n == 0 {
		return ids, len(ids), nil
	}
	if len(ids) < n {
		return nil, 0, fmt.Errorf("prompt: %s has %d tokens, fewer than the %d needed", path, len(ids), n)
	}
	if len(ids) == n {
		return ids, n, nil
	}
	cut, err := cutExact(tok, string(data), ids, n, wrap)
	if err != nil {
		return nil, 0, fmt.Errorf("prompt: %s: %w", path, err)
	}
	return cut, len(ids), nil
}

// synthesizeIDs generates text until it encodes to more than n ids, then
// cuts the ids to n (cutExact). The text for a seed does not depend on n: a
// shorter prompt's text is a prefix of a longer one's.
func synthesizeIDs(tok tokenize.Tokenizer, seed uint64, mix string, n int, wrap func([]int32) []int32) ([]int32, error) {
	gen := NewGenerator(seed, mix)
	var b strings.Builder
	estimate := 0
	for {
		// Paragraphs are counted one by one (cheap), the whole text only
		// once the estimate passes n: the sum differs from the whole text's
		// count only at paragraph joins.
		for estimate < n+n/50+8 {
			p := gen.Paragraph()
			c, err := tok.Count(p)
			if err != nil {
				return nil, fmt.Errorf("prompt: encode: %w", err)
			}
			b.WriteString(p)
			estimate += c
		}
		ids, err := tok.Encode(b.String())
		if err != nil {
			return nil, fmt.Errorf("prompt: encode: %w", err)
		}
		// One token to spare: the cut search may look past the n-th id.
		if len(ids) > n {
			return cutExact(tok, b.String(), ids, n, wrap)
		}
		estimate = len(ids) + 1
	}
}

// cutWindow is how many characters on either side of the first cut
// cutExact tries; a cut inside a merged run or a character is off by one
// or two.
const cutWindow = 64

// cutExact returns n ids whose text, wrapped (the chat template), encodes
// to exactly the wrapped ids: what a user who sends the prompt's text to
// another tool gets back. ids (tok.Encode(text), longer than n) cut at n
// usually are such ids. When the cut falls inside a character (its text
// ends in U+FFFD) or inside a run the tokenizer merges differently once the
// text ends there ("\n\t\t" is 198, 298 as text but 198, 197, 197 as cut
// ids), the ids of a prefix of text ending on a character boundary near
// the cut, with exactly n ids, are used instead, or, where no prefix has
// exactly n ids, one of n-1 ids ending in a visible character followed by
// a newline.
func cutExact(tok tokenize.Tokenizer, text string, ids []int32, n int, wrap func([]int32) []int32) ([]int32, error) {
	cut := ids[:n]
	ok, err := roundTrips(tok, wrap(cut))
	if err != nil || ok {
		return cut, err
	}
	decoded, err := tok.Decode(cut)
	if err != nil {
		return nil, fmt.Errorf("prompt: decode: %w", err)
	}
	k := 0
	for k < len(decoded) && k < len(text) && decoded[k] == text[k] {
		k++
	}
	for k > 0 && k < len(text) && !utf8.RuneStart(text[k]) {
		k--
	}
	// First a prefix with exactly n ids; where the count jumps over n at
	// every character near the cut (a whitespace run before a word), a
	// prefix of n-1 ids ending in a visible character, plus a newline.
	for _, newline := range []bool{false, true} {
		fwd, back := k, k
		for range cutWindow {
			for _, end := range []int{fwd, back} {
				if end <= 0 || end > len(text) {
					continue
				}
				candidate := text[:end]
				if newline {
					r, _ := utf8.DecodeLastRuneInString(candidate)
					if unicode.IsSpace(r) {
						continue
					}
					candidate += "\n"
				}
				got, err := tok.Encode(candidate)
				if err != nil {
					return nil, fmt.Errorf("prompt: encode: %w", err)
				}
				if len(got) != n {
					continue
				}
				if ok, err := roundTrips(tok, wrap(got)); err != nil || ok {
					return got, err
				}
			}
			fwd = nextRune(text, fwd)
			back = prevRune(text, back)
		}
	}
	return nil, fmt.Errorf("prompt: no cut of the text within %d characters of token %d gives exactly %d tokens that encode back to themselves; try another length or seed", cutWindow, n, n)
}

// roundTrips tells whether the text of ids encodes to ids again.
func roundTrips(tok tokenize.Tokenizer, ids []int32) (bool, error) {
	text, err := tok.Decode(ids)
	if err != nil {
		return false, fmt.Errorf("prompt: decode: %w", err)
	}
	again, err := tok.Encode(text)
	if err != nil {
		return false, fmt.Errorf("prompt: encode: %w", err)
	}
	return slices.Equal(again, ids), nil
}

func nextRune(s string, i int) int {
	if i >= len(s) {
		return len(s) + 1
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return i + size
}

func prevRune(s string, i int) int {
	if i <= 0 {
		return -1
	}
	_, size := utf8.DecodeLastRuneInString(s[:i])
	return i - size
}
