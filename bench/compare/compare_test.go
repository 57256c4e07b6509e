package compare

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report/reporttest"
)

func runs(label, engine string, runtimes ...float64) []bench.Record {
	recs := reporttest.Repeats(reporttest.Fixture{Run: label + engine, Label: label, Model: "random:qwen2.5-14b", Dtype: "fp16", Prompt: 10000,
		MaxNew: 800, TTFT: 0.7, Load: 2, Warmup: 1}, runtimes...)
	for i := range recs {
		recs[i].Engine.Engine = engine
	}
	return recs
}

// Six repeats a side that do not overlap are a real change; two a side
// never are, whatever the numbers (the U test's smallest p is 1/3).
func TestCompareSaysWhatIsBeyondNoise(t *testing.T) {
	old := runs("ref (cuda, tp=1)", "ref", 7.40, 7.42, 7.45, 7.41, 7.43, 7.44)
	faster := runs("ref (cuda, tp=1)", "ref", 7.00, 7.02, 7.01, 7.03, 6.99, 7.04)
	res, err := Compare(old, faster, ByWorkload)
	if err != nil || len(res.Pairs) != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	rt := res.Pairs[0].Lines[0]
	if rt.Metric != "runtime_s" || !rt.Significant || !rt.Better || rt.Delta != "-5.52%" || rt.P > 0.01 {
		t.Fatalf("runtime %+v", rt)
	}
	tps := res.Pairs[0].Lines[1]
	if tps.Metric != "tok_s" || !tps.Significant || !tps.Better || !strings.HasPrefix(tps.Delta, "+") {
		t.Fatalf("tok/s %+v", tps)
	}
	// Output tokens are the same everywhere: no change.
	if out := res.Pairs[0].Lines[5]; out.Significant || out.Delta != "~" {
		t.Fatalf("output tokens %+v", out)
	}
	// Identical greedy outputs on identical prompts.
	if d := res.Pairs[0].Divergence; d == nil || d.Step != -1 || d.Summary != "identical: 800 tokens each" {
		t.Fatalf("divergence %+v", d)
	}

	few, err := Compare(runs("x", "ref", 7.4, 7.5), runs("x", "ref", 5.0, 5.1), ByWorkload)
	if err != nil {
		t.Fatal(err)
	}
	l := few.Pairs[0].Lines[0]
	if l.Significant || l.Delta != "~" || len(l.Warnings) == 0 || !strings.Contains(l.Warnings[0], "need >= 4 samples") {
		t.Fatalf("two a side: %+v", l)
	}
	var b bytes.Buffer
	Write(&b, few)
	out := b.String()
	for _, w := range []string{"x · qwen2.5-14b (random weights) FP16 · 10k->0.8k", "runtime_s", "~", "(p=0.333 n=2+2)",
		"note: need >= 4 samples to detect a difference at alpha level 0.05", "output ids: identical: 800 tokens each"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// Across engines, runs pair by identical prompt ids; the output ids say
// where the engines part.
func TestCompareAcrossEngines(t *testing.T) {
	ref := runs("ref (cuda, tp=1)", "ref", 7.4, 7.5, 7.6, 7.45)
	hf := runs("HF (device_map=auto)", "hf", 46.1, 46.3, 46.2, 46.4)
	for i := range hf {
		hf[i].Output.IDs[312] = 99
	}
	if _, err := Compare(ref, hf, ByWorkload); err == nil || !strings.Contains(err.Error(), "--by prompt") {
		t.Fatalf("different labels by workload: %v", err)
	}
	res, err := Compare(ref, hf, ByPrompt)
	if err != nil || len(res.Pairs) != 1 {
		t.Fatalf("%v", err)
	}
	p := res.Pairs[0]
	if p.OldLabel != "ref (cuda, tp=1)" || p.NewLabel != "HF (device_map=auto)" || !p.Lines[0].Significant || p.Lines[0].Better {
		t.Fatalf("pair %+v", p)
	}
	if d := p.Divergence; d == nil || d.Step != 312 || !strings.Contains(d.Summary, "identical for 312 steps, then old chose 412 and new chose 99") {
		t.Fatalf("divergence %+v", d)
	}
	// A workload on one side only is listed.
	extra := runs("ref (cuda, tp=1)", "ref", 9)
	for i := range extra {
		extra[i].Workload.MaxNew = 1000
		extra[i].Prompt.Hash = "sha256:other"
	}
	res, _ = Compare(append(ref, extra...), hf, ByPrompt)
	if len(res.OnlyOld) != 1 || !strings.Contains(res.OnlyOld[0], "10k->1k") {
		t.Fatalf("only old: %q", res.OnlyOld)
	}
	if _, err := Compare(ref, hf, "label"); err == nil {
		t.Fatal("bad --by accepted")
	}
}
