//go:build cgo && !lmdrive_nohf

package tokenize

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzBackendsAgree checks that the pure-Go backend gives the ids of the
// Rust library for any text, and that both decode any id sequence alike.
// Plain `go test` runs the seed corpus (the golden texts and a few more);
// `go test -fuzz FuzzBackendsAgree ./tokenize` searches further.
func FuzzBackendsAgree(f *testing.F) {
	g := loadGolden(f)
	for _, c := range g.Encode {
		if len(c.Text) < 2000 {
			f.Add(c.Text)
		}
	}
	for _, s := range []string{
		"'ſ'Ｓ", "\u0301a", "x\u00a0\u00a0y", "\r\r\n\n \r", " 1 22 333", "<|im_end|>\u0301",
		"a\u0315\u0300\u05ae\u0301b", "\u1100\u1161\u11a8\u11a8", "가\u11a8", "🙂\u200d", "\t\u000b\u000c",
	} {
		f.Add(s)
	}
	hfTok := openShared(f, BackendHF)
	goTok := openShared(f, BackendGo)
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) || hasNUL(text) {
			t.Skip("the hf backend takes neither invalid UTF-8 nor NUL bytes")
		}
		want, err := hfTok.Encode(text)
		if err != nil {
			t.Fatalf("hf Encode(%q): %v", text, err)
		}
		got, err := goTok.Encode(text)
		if err != nil {
			t.Fatalf("go Encode(%q): %v", text, err)
		}
		if !slices.Equal(got, want) {
			i := firstDiff(got, want)
			t.Fatalf("Encode(%q): go and hf differ at id %d: go %v, hf %v", text, i, got, want)
		}
		// Decode the ids shifted by one: an arbitrary, often invalid, byte
		// sequence.
		shifted := make([]int32, len(want))
		for i, id := range want {
			shifted[i] = (id + 1) % int32(len(shiftable))
			shifted[i] = shiftable[shifted[i]]
		}
		for _, ids := range [][]int32{want, shifted} {
			wantText, hfErr := hfTok.Decode(ids)
			gotText, goErr := goTok.Decode(ids)
			if hfErr != nil {
				if hasNUL(gotText) {
					continue // the hf backend cannot return NUL bytes
				}
				t.Fatalf("hf Decode(%v): %v", ids, hfErr)
			}
			if goErr != nil || gotText != wantText {
				t.Fatalf("Decode(%v): go %q (%v), hf %q", ids, gotText, goErr, wantText)
			}
		}
	})
}

// shiftable lists the ids the fuzz test decodes: the byte tokens, a range
// of ordinary tokens and the added tokens.
var shiftable = func() []int32 {
	var ids []int32
	for id := int32(0); id < 2000; id++ {
		ids = append(ids, id)
	}
	for id := int32(151600); id < 151665; id++ {
		ids = append(ids, id)
	}
	return ids
}()
