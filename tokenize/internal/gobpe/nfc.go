package gobpe

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// NFC here follows the Unicode 9.0 tables of the Rust crate that Hugging
// Face tokenizers uses (see nfc_tables.go and the script that writes it),
// not Go's newer tables: for characters added since, the two differ, and
// token ids must match Hugging Face's.

// runeRange is an inclusive range of code points sharing a value.
type runeRange struct {
	lo, hi rune
	val    uint8
}

func lookupRange(table []runeRange, r rune) uint8 {
	i := sort.Search(len(table), func(i int) bool { return table[i].hi >= r })
	if i < len(table) && table[i].lo <= r {
		return table[i].val
	}
	return 0
}

func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	return lookupRange(combiningClasses[:], r)
}

// nfcStable reports whether r leaves any string it is in unchanged under
// NFC as far as r is concerned (NFC_Quick_Check=Yes and class 0).
func nfcStable(r rune) bool {
	if r < 0x300 {
		return true
	}
	return lookupRange(nfcUnstable[:], r) == 0
}

// Hangul syllable arithmetic (Unicode chapter 3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

// nfc returns s in Normalization Form C.
func nfc(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !nfcStable(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	// Normalize from the start of the character run that could interact
	// with the first unstable character: back up to the previous starter.
	start := i
	for start > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:start])
		start -= size
		if combiningClass(r) == 0 {
			break
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:start])
	for _, r := range compose(reorder(decompose(s[start:]))) {
		b.WriteRune(r)
	}
	return b.String()
}

// decompose returns the full canonical decomposition of s.
func decompose(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r >= hangulSBase && r < hangulSBase+hangulSCount:
			idx := r - hangulSBase
			out = append(out, hangulLBase+idx/hangulNCount, hangulVBase+(idx%hangulNCount)/hangulTCount)
			if t := idx % hangulTCount; t != 0 {
				out = append(out, hangulTBase+t)
			}
		case r >= 0xC0:
			if d, ok := canonicalDecompositions[r]; ok {
				out = append(out, []rune(d)...)
				continue
			}
			out = append(out, r)
		default:
			out = append(out, r)
		}
	}
	return out
}

// reorder puts every run of non-starters in canonical order (a stable sort
// by combining class).
func reorder(rs []rune) []rune {
	for i := 0; i < len(rs); {
		if combiningClass(rs[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(rs) && combiningClass(rs[j]) != 0 {
			j++
		}
		run := rs[i:j]
		sort.SliceStable(run, func(a, b int) bool { return combiningClass(run[a]) < combiningClass(run[b]) })
		i = j
	}
	return rs
}

// compose applies canonical composition in place.
func compose(rs []rune) []rune {
	out := rs[:0]
	starter := -1   // index in out of the last starter
	lastClass := -1 // class of the last character after the starter; -1 if none
	for _, r := range rs {
		class := int(combiningClass(r))
		if starter >= 0 && (lastClass == -1 || lastClass < class) {
			if c, ok := composePair(out[starter], r); ok {
				out[starter] = c
				continue
			}
		}
		switch {
		case class == 0:
			starter, lastClass = len(out), -1
		case starter >= 0:
			lastClass = class
		}
		out = append(out, r)
	}
	return out
}

func composePair(a, b rune) (rune, bool) {
	// Hangul LV and LVT syllables.
	if a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount {
		return hangulSBase + ((a-hangulLBase)*hangulVCount+(b-hangulVBase))*hangulTCount, true
	}
	if a >= hangulSBase && a < hangulSBase+hangulSCount && (a-hangulSBase)%hangulTCount == 0 &&
		b > hangulTBase && b < hangulTBase+hangulTCount {
		return a + (b - hangulTBase), true
	}
	c, ok := compositions[uint64(a)<<21|uint64(b)]
	return c, ok
}
