package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
)

// LoadHeader is the table of load runs: throughput against latency, one
// row per engine, workload and load level.
const LoadHeader = "| Engine / Config | Load | Prompt->Gen (tokens) | Requests | Out tok/s | Req/s | TTFT p50 / p90 / p99 (s) | ITL p50 / p90 / p99 (ms) | E2E p50 / p99 (s) | Goodput (req/s) | Notes |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"

// WriteLoadTable writes the load table of recs; it writes nothing when recs
// hold no load run.
func WriteLoadTable(w io.Writer, recs []bench.Record) error {
	points := bench.LoadPoints(recs)
	if len(points) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(LoadHeader)
	for _, p := range points {
		runs := fmt.Sprintf("median of %d runs", p.Runs)
		if p.Runs == 1 {
			runs = "one run"
		}
		notes := []string{runs}
		if p.DecodeTokS > 0 {
			notes = append(notes, fmt.Sprintf("decode %.1f tok/s", p.DecodeTokS))
		}
		if p.Failed > 0 {
			notes = append(notes, fmt.Sprintf("%d of %d requests failed (their records say why)", p.Failed, p.Requests))
		}
		notes = append(notes, fmt.Sprintf("goodput target TTFT ≤ %g s, ITL ≤ %g ms", p.Load.Goodput.TTFTS, p.Load.Goodput.ITLms))
		notes = append(notes, p.Notes...)
		fmt.Fprintf(&b, "| %s | %s | %s->%s | %d | %.1f | %.3g | %.3f / %.3f / %.3f | %.1f / %.1f / %.1f | %.3f / %.3f | %.3g | %s |\n",
			p.Label, p.Load.String(), Kilo(p.PromptToks), Kilo(p.MaxNew), p.Requests, p.OutTokPerS, p.ReqPerS,
			p.TTFTS.P50, p.TTFTS.P90, p.TTFTS.P99, p.ITLms.P50, p.ITLms.P90, p.ITLms.P99, p.E2ES.P50, p.E2ES.P99,
			p.GoodputReqS, strings.Join(notes, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
