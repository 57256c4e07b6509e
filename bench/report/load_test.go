package report

import (
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
)

// loadRun makes the records of one load run: n request records and the
// run's summary.
func loadRun(label string, l bench.Load, s bench.LoadSummary, n int) []bench.Record {
	w := bench.Workload{Model: "random:tiny", MaxNew: 16, Load: &l}
	var recs []bench.Record
	for i := range n {
		recs = append(recs, bench.Record{Kind: bench.KindRequest, Status: "ok", Label: label, Workload: w, Prompt: bench.Prompt{Tokens: 128},
			Metrics: &bench.Metrics{OutputTokens: 16}, Request: &bench.RequestTiming{Index: i}})
	}
	return append(recs, bench.Record{Kind: bench.KindLoad, Status: "ok", Label: label, Workload: w, Prompt: bench.Prompt{Tokens: 128}, Summary: &s})
}

// Load runs render as a table of levels and stay out of the digest.
func TestLoadTable(t *testing.T) {
	b8 := bench.Load{Mode: bench.LoadBatch, Batch: 8, Goodput: bench.DefaultSLO}
	b32 := bench.Load{Mode: bench.LoadBatch, Batch: 32, Goodput: bench.DefaultSLO}
	recs := loadRun("ref", b8, bench.LoadSummary{Load: b8.String(), Requests: 8, Completed: 8, OutputTokPerS: 100, ReqPerS: 6,
		TTFTS: bench.Dist{P50: 0.1, P90: 0.2, P99: 0.3}, DecodeTokPerS: 120}, 8)
	recs = append(recs, loadRun("ref", b32, bench.LoadSummary{Load: b32.String(), Requests: 32, Completed: 31, Failed: 1, OutputTokPerS: 300,
		ReqPerS: 18, Notes: []string{"the rate could not be met: x"}}, 32)...)
	var sb strings.Builder
	if err := (Reporter{W: &sb}).Write(FormatMarkdown, recs); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, w := range []string{"| Engine / Config | Load |", "| ref | batch=8 | 0.128k->0.016k | 8 | 100.0 | 6 | 0.100 / 0.200 / 0.300 |",
		"| ref | batch=32 |", "1 of 32 requests failed", "decode 120.0 tok/s", "the rate could not be met"} {
		if !strings.Contains(out, w) {
			t.Errorf("report lacks %q:\n%s", w, out)
		}
	}
	if d := Build(recs, Options{}); len(d.Tables) != 0 {
		t.Fatalf("load records reached the digest: %+v", d.Tables)
	}
	sb.Reset()
	if err := (Reporter{W: &sb}).Run(recs[:9]); err != nil || !strings.Contains(sb.String(), "| ref | batch=8 |") {
		t.Fatalf("run: %v\n%s", err, sb.String())
	}
}
