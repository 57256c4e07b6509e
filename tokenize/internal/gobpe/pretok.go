package gobpe

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer splits normalized text into words before BPE. Hugging
// Face runs a regex through Oniguruma; the patterns used by byte-level BPE
// models need a lookahead ((?!\S)), which Go's regexp lacks, so each known
// pattern gets a hand-written scanner that follows the regex's
// alternation order and backtracking exactly.

// Known Split patterns.
const (
	// qwenPattern is the pre-tokenizer of Qwen2, Qwen2.5 and Qwen3.
	qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// llama3Pattern is Qwen's with runs of up to three digits (Llama 3,
	// OpenAI's cl100k).
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// gpt2Pattern is the one the ByteLevel pre-tokenizer applies itself
	// when use_regex is true.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// splitter cuts text into words, calling emit with each in order.
type splitter interface {
	split(text string, emit func(word string))
}

// charClass is the only property of a character the patterns look at.
type charClass uint8

const (
	classOther   charClass = iota // not \s, not \p{L}, not \p{N}
	classLetter                   // \p{L}
	classNumber                   // \p{N}
	classSpace                    // \s other than \r and \n
	classNewline                  // \r or \n
)

// codeRange is an inclusive range of code points.
type codeRange struct{ lo, hi rune }

func inRanges(table []codeRange, r rune) bool {
	i := sort.Search(len(table), func(i int) bool { return table[i].hi >= r })
	return i < len(table) && table[i].lo <= r
}

// classifySlow classifies r with the tables generated from Oniguruma (see
// class_tables.go): Go's unicode package follows an older Unicode version.
func classifySlow(r rune) charClass {
	switch {
	case r == '\r' || r == '\n':
		return classNewline
	case inRanges(spaceRanges[:], r):
		return classSpace
	case inRanges(letterRanges[:], r):
		return classLetter
	case inRanges(numberRanges[:], r):
		return classNumber
	}
	return classOther
}

// bmpClass holds the class of every code point below U+10000, computed
// once; it is read-only afterwards.
var bmpClass = func() *[0x10000]charClass {
	var t [0x10000]charClass
	for r := range rune(len(t)) {
		t[r] = classifySlow(r)
	}
	return &t
}()

func classify(r rune) charClass {
	if r < 0x10000 {
		return bmpClass[r]
	}
	return classifySlow(r)
}

// at returns the class and size of the character starting at text[i].
func at(text string, i int) (charClass, int) {
	c := text[i]
	if c < utf8.RuneSelf {
		return bmpClass[c], 1
	}
	r, size := utf8.DecodeRuneInString(text[i:])
	return classify(r), size
}

// isWS reports \s: any whitespace, newlines included.
func (c charClass) isWS() bool { return c == classSpace || c == classNewline }

// foldsTo reports whether r matches the ASCII lower-case letter want under
// Unicode simple case folding, as a case-insensitive regex compares them
// (so U+017F LATIN SMALL LETTER LONG S matches 's').
func foldsTo(r rune, want byte) bool {
	w := rune(want)
	if r == w {
		return true
	}
	for f := unicode.SimpleFold(w); f != w; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}

// contraction returns the length of a contraction ('s 't 're 've 'm 'll 'd)
// at text[i], or 0. With fold set, letters compare case-insensitively.
func contraction(text string, i int, fold bool) int {
	if text[i] != '\'' {
		return 0
	}
	j := i + 1
	match := func(want byte) bool {
		if j >= len(text) {
			return false
		}
		if !fold {
			if text[j] == want {
				j++
				return true
			}
			return false
		}
		r, size := utf8.DecodeRuneInString(text[j:])
		if foldsTo(r, want) {
			j += size
			return true
		}
		return false
	}
	// The alternatives in pattern order; the first that matches wins.
	for _, alt := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
		j = i + 1
		ok := true
		for k := 0; k < len(alt) && ok; k++ {
			ok = match(alt[k])
		}
		if ok {
			return j - i
		}
	}
	return 0
}

// wsRun returns the end of the run of whitespace starting at i and the
// start of the last newline in it (-1 if none).
func wsRun(text string, i int) (end, lastNewline int) {
	lastNewline = -1
	for i < len(text) {
		c, size := at(text, i)
		if !c.isWS() {
			break
		}
		if c == classNewline {
			lastNewline = i
		}
		i += size
	}
	return i, lastNewline
}

// runOf returns the end of the run of characters of class want from i.
func runOf(text string, i int, want charClass) int {
	for i < len(text) {
		c, size := at(text, i)
		if c != want {
			break
		}
		i += size
	}
	return i
}

// lastCharStart returns the start of the last character of text[:end].
func lastCharStart(text string, end int) int {
	_, size := utf8.DecodeLastRuneInString(text[:end])
	return end - size
}

// qwenSplitter implements qwenPattern (maxDigits 1) and llama3Pattern
// (maxDigits 3).
type qwenSplitter struct{ maxDigits int }

func (s qwenSplitter) split(text string, emit func(string)) {
	for i := 0; i < len(text); {
		end := s.match(text, i)
		emit(text[i:end])
		i = end
	}
}

// match returns the end of the regex match that starts at i.
func (s qwenSplitter) match(text string, i int) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if n := contraction(text, i, true); n > 0 {
		return i + n
	}
	c, size := at(text, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == classLetter {
		return runOf(text, i+size, classLetter)
	}
	if c == classOther || c == classSpace {
		if j := i + size; j < len(text) {
			if next, _ := at(text, j); next == classLetter {
				return runOf(text, j, classLetter)
			}
		}
	}
	// \p{N} or \p{N}{1,3}
	if c == classNumber {
		end := i + size
		for n := 1; n < s.maxDigits && end < len(text); n++ {
			next, nsize := at(text, end)
			if next != classNumber {
				break
			}
			end += nsize
		}
		return end
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := i
	if text[i] == ' ' && i+1 < len(text) {
		if next, _ := at(text, i+1); next == classOther {
			start = i + 1
			c = classOther
		}
	}
	if c == classOther {
		end := runOf(text, start, classOther)
		return runOf(text, end, classNewline)
	}
	// The character is whitespace from here on.
	end, lastNewline := wsRun(text, i)
	// \s*[\r\n]+
	if lastNewline >= 0 {
		return lastNewline + 1
	}
	// \s+(?!\S)
	if end == len(text) {
		return end
	}
	if last := lastCharStart(text, end); last > i {
		return last
	}
	// \s+
	return end
}

// gpt2Splitter implements gpt2Pattern.
type gpt2Splitter struct{}

func (gpt2Splitter) split(text string, emit func(string)) {
	for i := 0; i < len(text); {
		end := gpt2Splitter{}.match(text, i)
		emit(text[i:end])
		i = end
	}
}

func (gpt2Splitter) match(text string, i int) int {
	// 's|'t|'re|'ve|'m|'ll|'d
	if n := contraction(text, i, false); n > 0 {
		return i + n
	}
	c, _ := at(text, i)
	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
	start := i
	if text[i] == ' ' && i+1 < len(text) {
		if next, _ := at(text, i+1); next != classSpace && next != classNewline {
			start, c = i+1, next
		}
	}
	if c == classLetter || c == classNumber || c == classOther {
		return runOf(text, start, c)
	}
	end, _ := wsRun(text, i)
	// \s+(?!\S)
	if end == len(text) {
		return end
	}
	if last := lastCharStart(text, end); last > i {
		return last
	}
	// \s+
	return end
}
