package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
)

// Title heads a markdown digest.
const Title = "lmdrive benchmark digest"

// Reporter renders records: `lmdrive run` after its repeats, `lmdrive
// report` from saved results.
type Reporter struct {
	W       io.Writer
	Options Options
}

// Write renders records in format.
func (r Reporter) Write(format string, recs []bench.Record) error {
	if len(recs) == 0 {
		return fmt.Errorf("no records to report")
	}
	d := Build(recs, r.Options)
	switch format {
	case FormatMarkdown:
		if len(d.Tables) == 0 && len(bench.LoadPoints(recs)) > 0 {
			return WriteLoadTable(r.W, recs)
		}
		if err := WriteMarkdown(r.W, d, Title); err != nil {
			return err
		}
		return WriteLoadTable(r.W, recs) // load runs, a row per level
	case FormatCSV:
		return WriteCSV(r.W, d)
	case FormatJSON:
		return WriteJSON(r.W, d)
	case FormatGoBench:
		return WriteGoBench(r.W, recs)
	default:
		return fmt.Errorf("--format %q: want %s", format, strings.Join(Formats, ", "))
	}
}

// Run writes what a finished run shows: its digest row and the spread of
// every metric over the repeats.
func (r Reporter) Run(recs []bench.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if recs[0].Workload.Load != nil { // a load run: its row of the load table
		if _, err := io.WriteString(r.W, "\n"); err != nil {
			return err
		}
		return WriteLoadTable(r.W, recs)
	}
	d := Build(recs, r.Options)
	var b strings.Builder
	b.WriteString("\n" + Header)
	for _, row := range d.Rows() {
		b.WriteString(MarkdownRow(row))
	}
	b.WriteString("\n")
	if _, err := io.WriteString(r.W, b.String()); err != nil {
		return err
	}
	rows := d.Rows()
	for _, row := range rows {
		var ok []bench.Record
		for _, rec := range row.Records {
			if rec.Status == "ok" && rec.Metrics != nil {
				ok = append(ok, rec)
			}
		}
		if len(ok) == 0 {
			continue
		}
		if len(rows) > 1 {
			fmt.Fprintf(r.W, "%s, %s->%s:\n", row.Label, Kilo(row.PromptTokens), Kilo(row.MaxNew))
		}
		WriteSummary(r.W, ok)
	}
	return nil
}

// WriteSummary prints each metric's median, the interval of the median,
// min and max, and warns when the repeats disagree widely.
func WriteSummary(w io.Writer, recs []bench.Record) {
	if len(recs) == 0 {
		return
	}
	rows := []struct {
		name string
		get  func(*bench.Metrics) float64
	}{
		{"runtime_s", func(m *bench.Metrics) float64 { return m.RuntimeS }},
		{"ttft_s", func(m *bench.Metrics) float64 { return m.TTFTS }},
		{"decode_s", func(m *bench.Metrics) float64 { return m.DecodeS }},
		{"tok_s", func(m *bench.Metrics) float64 { return m.TokPerS }},
		{"decode_tok_s", func(m *bench.Metrics) float64 { return m.DecodeTokPerS }},
		{"itl_p50_ms", func(m *bench.Metrics) float64 { return m.ITLms.P50 }},
		{"itl_p99_ms", func(m *bench.Metrics) float64 { return m.ITLms.P99 }},
	}
	fmt.Fprintf(w, "%-13s %10s %10s %10s   %s\n", "metric", "median", "min", "max", "interval of the median")
	var wide []string
	for _, row := range rows {
		xs := make([]float64, len(recs))
		for i, r := range recs {
			xs[i] = row.get(r.Metrics)
		}
		s := bench.Summarize(xs)
		if s.Max == 0 && s.Min == 0 && recs[0].Imported != nil {
			continue // the tool did not report it
		}
		fmt.Fprintf(w, "%-13s %10.4g %10.4g %10.4g   %s\n", row.name, s.Median, s.Min, s.Max, s.IntervalText("%.4g"))
		if s.N > 1 && s.Spread() > spreadWarning && !strings.HasPrefix(row.name, "itl") {
			wide = append(wide, fmt.Sprintf("%s varies by %.0f%%", row.name, 100*s.Spread()))
		}
	}
	if len(recs) < 6 {
		fmt.Fprintf(w, "(%d repeats: the interval is their range; 6 or more give a 95%% interval of the median)\n", len(recs))
	}
	if len(wide) > 0 {
		fmt.Fprintf(w, "warning: repeats disagree (%s); the machine may be busy — use more repeats or a quieter host\n", strings.Join(wide, ", "))
	}
}
