package gobpe

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a token matched in the text before normalization and
// pre-tokenization (special tokens such as <|im_start|>, and any other
// token the tokenizer.json lists under added_tokens).
type addedToken struct {
	id         int32
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
}

// matcher finds added tokens leftmost-longest, as Hugging Face's
// Aho-Corasick automaton does: the match that starts first wins, and of
// those starting at the same place the longest.
type matcher struct {
	// byFirst lists, per first byte, the tokens starting with it, longest
	// first.
	byFirst [256][]addedToken
	any     bool
}

func newMatcher(tokens []addedToken) *matcher {
	m := &matcher{}
	for _, t := range tokens {
		b := t.content[0]
		m.byFirst[b] = append(m.byFirst[b], t)
		m.any = true
	}
	for b := range m.byFirst {
		list := m.byFirst[b]
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].content) > len(list[j].content) })
	}
	return m
}

// piece is a run of text, or an added token when id >= 0.
type piece struct {
	text string
	id   int32
}

// split cuts text into plain pieces and added tokens. It follows the
// single_word, lstrip and rstrip rules of Hugging Face's AddedVocabulary:
// a single_word token that touches a word character is skipped, lstrip and
// rstrip take the whitespace next to the token into the token.
func (m *matcher) split(text string, out []piece) []piece {
	if !m.any {
		return append(out, piece{text: text, id: -1})
	}
	done := 0 // text[:done] has been emitted
	for i := 0; i < len(text); {
		cands := m.byFirst[text[i]]
		var hit *addedToken
		for k := range cands {
			if strings.HasPrefix(text[i:], cands[k].content) {
				hit = &cands[k]
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		start, stop := i, i+len(hit.content)
		i = stop
		if hit.singleWord {
			if (start > 0 && endsWithWordChar(text[:start])) || (stop < len(text) && startsWithWordChar(text[stop:])) {
				continue
			}
		}
		if hit.lstrip {
			start = max(trailingSpaceStart(text[:start]), done)
		}
		if hit.rstrip {
			stop += leadingSpaceLen(text[stop:])
			i = stop
		}
		if done < start {
			out = append(out, piece{text: text[done:start], id: -1})
		}
		out = append(out, piece{text: text[start:stop], id: hit.id})
		done = stop
	}
	if done < len(text) {
		out = append(out, piece{text: text[done:], id: -1})
	}
	return out
}

// isWordChar approximates the regex class \w of Rust's regex crate.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Other_Alphabetic, r) || r == 0x200C || r == 0x200D
}

func endsWithWordChar(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordChar(r)
}

// trailingSpaceStart returns where the whitespace at the end of s begins.
func trailingSpaceStart(s string) int {
	return len(strings.TrimRightFunc(s, unicode.IsSpace))
}

// leadingSpaceLen returns the length of the whitespace at the start of s.
func leadingSpaceLen(s string) int {
	return len(s) - len(strings.TrimLeftFunc(s, unicode.IsSpace))
}
