package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

func TestReporterFormats(t *testing.T) {
	recs, err := Run(context.Background(), &fakeEngine{}, Plan{Label: "fake", Prompt: Prompt{Tokens: 4}, Workload: Workload{MaxNew: 3, Repeats: 2}},
		func(Record) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	var md, gb, run strings.Builder
	if err := (Reporter{W: &md}).Write(FormatMarkdown, recs); err != nil || !strings.HasPrefix(md.String(), DigestHeader) || strings.Count(md.String(), "| fake |") != 1 {
		t.Fatalf("markdown: %v\n%s", err, md.String())
	}
	if err := (Reporter{W: &gb}).Write(FormatGoBench, recs); err != nil || strings.Count(gb.String(), "BenchmarkGenerate/label=fake/") != 2 {
		t.Fatalf("gobench: %v\n%s", err, gb.String())
	}
	if err := (Reporter{W: &run}).Run(recs); err != nil || !strings.Contains(run.String(), "| fake |") || !strings.Contains(run.String(), "95% CI") {
		t.Fatalf("run: %v\n%s", err, run.String())
	}
	if err := (Reporter{W: &md}).Write("csv", recs); err == nil || !strings.Contains(err.Error(), `--format "csv": want markdown or gobench`) {
		t.Fatalf("bad format: %v", err)
	}
	if err := (Reporter{W: &md}).Digest([]Record{{Status: "error"}}); err == nil {
		t.Fatal("a digest of failures only was accepted")
	}
}

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
