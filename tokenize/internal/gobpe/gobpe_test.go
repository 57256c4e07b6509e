package gobpe

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestAppendLossy(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"\xe4\xbd", "\uFFFD"},                 // truncated 3-byte sequence: one subpart
		{"\xe4\xbdx", "\uFFFDx"},               // followed by ASCII
		{"\x80\xbf", "\uFFFD\uFFFD"},           // lone continuation bytes: one each
		{"\xc0\xaf", "\uFFFD\uFFFD"},           // C0 can never start a sequence
		{"\xe0\x80\xaf", "\uFFFD\uFFFD\uFFFD"}, // E0 80 is overlong: E0 alone is the subpart
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xf0\x9f\x98", "\uFFFD"}, // truncated emoji
		{"\xf0\x9f\x98\x80", "😀"},
		{"a\xffb", "a\uFFFDb"},
	}
	for _, c := range cases {
		if got := string(appendLossy(nil, []byte(c.in))); got != c.want {
			t.Errorf("appendLossy(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func splitAll(s splitter, text string) []string {
	var out []string
	s.split(text, func(w string) { out = append(out, w) })
	return out
}

// The expected pieces were checked against Hugging Face's pre-tokenizer.
func TestQwenSplitter(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"'ſx", []string{"'ſ", "x"}},
		{"'Sx", []string{"'S", "x"}},
		{"'RE", []string{"'RE"}},
		{"a  \n\n  b", []string{"a", "  \n\n", " ", " b"}},
		{"x\t\tfoo", []string{"x", "\t", "\tfoo"}},
		{" \u3000abc", []string{" ", "\u3000abc"}},
		{"12345", []string{"1", "2", "3", "4", "5"}},
		{"(abc", []string{"(abc"}},
		{" !!\n\nx", []string{" !!\n\n", "x"}},
		{"\r\n\r\n   ", []string{"\r\n\r\n", "   "}},
		{"word   ", []string{"word", "   "}},
	}
	for _, c := range cases {
		if got := splitAll(qwenSplitter{maxDigits: 1}, c.in); !slices.Equal(got, c.want) {
			t.Errorf("split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := splitAll(qwenSplitter{maxDigits: 3}, "12345"); !slices.Equal(got, []string{"123", "45"}) {
		t.Errorf("llama3 digits: %q", got)
	}
}

func TestGPT2Splitter(t *testing.T) {
	got := splitAll(gpt2Splitter{}, "Hello  world's 123 !?  \n x")
	want := []string{"Hello", " ", " world", "'s", " 123", " !?", "  \n", " x"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The quadratic scan used for short words and the priority queue used for
// long ones must agree.
func TestMergeScanMatchesHeap(t *testing.T) {
	// Merges over the byte values of 'a'..'d': every pair merges, with
	// ranks that depend on the pair, into fresh ids.
	m := &bpe{merges: map[uint64]mergeRule{}, unkID: -1}
	next := int32(1000)
	rng := rand.New(rand.NewPCG(7, 7))
	var ids []int32
	for id := int32('a'); id <= 'd'; id++ {
		ids = append(ids, id)
	}
	for round := 0; round < 3; round++ {
		var made []int32
		for _, l := range ids {
			for _, r := range ids {
				if rng.IntN(3) == 0 {
					continue
				}
				key := pairKey(l, r)
				if _, ok := m.merges[key]; ok {
					continue
				}
				m.merges[key] = mergeRule{rank: int32(rng.IntN(1 << 20)), id: next}
				made = append(made, next)
				next++
			}
		}
		ids = append(ids, made...)
	}
	for trial := 0; trial < 500; trial++ {
		n := 2 + rng.IntN(smallWord-1)
		word := make([]int32, n)
		for i := range word {
			word[i] = 'a' + rng.Int32N(4)
		}
		a := slices.Clone(word)
		b := slices.Clone(word)
		a = a[:m.mergeScan(a)]
		b = b[:m.mergeHeap(b)]
		if !slices.Equal(a, b) {
			t.Fatalf("word %v: scan %v, heap %v", word, a, b)
		}
	}
}

func TestNFC(t *testing.T) {
	cases := []struct{ in, want string }{
		{"e\u0301", "é"},
		{"a\u0301\u0316", "á\u0316"},
		{"\u1100\u1161\u11a8", "각"},
		{"\u212b", "Å"},
		{"plain ascii", "plain ascii"},
		{"中文", "中文"},
		{strings.Repeat("x\u0308", 3), "ẍẍẍ"},
	}
	for _, c := range cases {
		if got := nfc(c.in); got != c.want {
			t.Errorf("nfc(%+q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}
