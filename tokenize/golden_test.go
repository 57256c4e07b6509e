package tokenize

import (
	"errors"
	"fmt"
	"testing"
)

// The golden ids come from Hugging Face tokenizers (Python) over our own
// corpus; see tokenize/scripts/make-golden.py.
func TestGoldenEncode(t *testing.T) {
	g := loadGolden(t)
	for _, backend := range []string{BackendHF, BackendGo} {
		t.Run(backend, func(t *testing.T) {
			tok := openShared(t, backend)
			if got := tok.Info().SHA256; got != g.TokenizerSHA256 {
				t.Fatalf("built-in tokenizer sha256 %s, golden file made with %s", got, g.TokenizerSHA256)
			}
			if got := tok.VocabSize(); got != g.VocabSize {
				t.Errorf("VocabSize() = %d, want %d", got, g.VocabSize)
			}
			for _, c := range g.Encode {
				ids, err := tok.Encode(c.Text)
				if backend == BackendHF && hasNUL(c.Text) {
					if err == nil {
						t.Errorf("%s: hf backend encoded text with a NUL byte", c.Name)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				if fmt.Sprint(ids) != fmt.Sprint(c.IDs) {
					i := firstDiff(ids, c.IDs)
					t.Errorf("%s: %d ids, want %d; first difference at %d: got %v, want %v",
						c.Name, len(ids), len(c.IDs), i, ids[i:min(i+8, len(ids))], c.IDs[i:min(i+8, len(c.IDs))])
				}
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	g := loadGolden(t)
	for _, backend := range []string{BackendHF, BackendGo} {
		t.Run(backend, func(t *testing.T) {
			tok := openShared(t, backend)
			for _, c := range g.Decode {
				text, err := tok.Decode(c.IDs)
				if backend == BackendHF && hasNUL(c.Text) {
					if err == nil || errors.Is(err, ErrUnknownID) {
						t.Errorf("%s: want the NUL error from the hf backend, got %q, %v", c.Name, text, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				if text != c.Text {
					t.Errorf("%s: Decode = %q, want %q", c.Name, text, c.Text)
				}
			}
		})
	}
}

// Decoding what was encoded gives the NFC form of the text back (byte-level
// BPE loses nothing else); the golden corpus is in NFC except for the
// cases named nfc-* and vietnamese-nfd.
func TestGoldenRoundTrip(t *testing.T) {
	g := loadGolden(t)
	tok := openShared(t, BackendGo)
	for _, c := range g.Encode {
		text, err := tok.Decode(c.IDs)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		switch c.Name {
		case "nfc-compose", "nfc-reorder", "nfc-singletons", "vietnamese-nfd":
			if text == c.Text {
				t.Errorf("%s: expected normalization to change the text", c.Name)
			}
		default:
			if text != c.Text {
				t.Errorf("%s: round trip = %q, want %q", c.Name, text, c.Text)
			}
		}
	}
}
