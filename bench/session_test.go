package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

func TestPromptOptionsAreCheckedFirst(t *testing.T) {
	for _, o := range []PromptOptions{{Source: "words"}, {Source: SourceText, Mix: "klingon"}} {
		if _, err := NewPromptMaker(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// A session with a broken tokenizer fails before any engine is opened
	// (the engine named here does not exist: reaching it would say so).
	_, err := OpenSession(context.Background(), Setup{Open: driver.OpenOptions{Engine: "none-such"},
		Prompts: PromptOptions{Source: SourceText, Tokenizer: "/no/such/tokenizer.json", Backend: "auto"}})
	if err == nil || strings.Contains(err.Error(), "liblmdrive_none-such") {
		t.Fatalf("want a tokenizer error before the engine: %v", err)
	}
	m, _ := NewPromptMaker(PromptOptions{Source: SourceIDs})
	p, err := m.Make(10, 1, 5000)
	if err != nil || p.Tokens != 10 || !strings.HasPrefix(p.Hash, "sha256:") {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestDefaultLabel(t *testing.T) {
	got := DefaultLabel("ref", "random:tiny", driver.Info{Backend: "ref-cuda", TPSize: 2}, true)
	if got != "ref (ref-cuda, random:tiny, tp=2, ignore_eos)" {
		t.Fatal(got)
	}
}
