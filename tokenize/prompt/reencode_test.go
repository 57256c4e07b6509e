package prompt

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lmdrive/lmdrive/tokenize"
)

// lengthsToCheck are the prompt lengths of the round-trip property: every
// length up to 300 (where cuts fall inside every kind of token run), then a
// spread of longer ones.
func lengthsToCheck() []int {
	var ns []int
	for n := 1; n <= 300; n++ {
		ns = append(ns, n)
	}
	for n := 307; n <= 20000; n = n*3/2 + 7 {
		ns = append(ns, n)
	}
	return ns
}

// TestPromptTextReencodesToItsIDs is the property a user relies on when
// sending a prompt's text to another tool: the text encodes to exactly the
// prompt's ids, the same N tokens, for every mix, length and backend, with
// and without the chat template.
func TestPromptTextReencodesToItsIDs(t *testing.T) {
	for _, backend := range tokenize.Backends() {
		tok, err := tokenize.Open("", backend)
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		for _, mix := range Mixes {
			for _, chat := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/chat=%v", backend, mix, chat), func(t *testing.T) {
					bad := 0
					for _, n := range lengthsToCheck() {
						if chat && n < 40 {
							continue // the template alone takes 30 tokens
						}
						p, err := Build(tok, Spec{Tokens: n, Seed: 3, Mix: mix, ChatTemplate: chat})
						if err != nil {
							t.Fatalf("N=%d: %v", n, err)
						}
						again, err := tok.Encode(p.Text)
						if err != nil {
							t.Fatal(err)
						}
						if len(p.IDs) != n || !slices.Equal(again, p.IDs) {
							if bad++; bad <= 5 {
								t.Errorf("N=%d: %d ids; the text re-encodes to %d ids, tail %v vs %v", n, len(p.IDs), len(again),
									p.IDs[max(0, len(p.IDs)-4):], again[max(0, len(again)-4):])
							}
						}
					}
					if bad > 0 {
						t.Errorf("%d of %d lengths do not round-trip", bad, len(lengthsToCheck()))
					}
				})
			}
		}
	}
}
