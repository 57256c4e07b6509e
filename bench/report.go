package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DigestHeader is the table header of the seed benchmark digest.
const DigestHeader = "| Engine / Config | Prompt->Gen (tokens) | Runtime (s) | Tok/s | Output Tokens | Notes |\n| --- | --- | --- | --- | --- | --- |\n"

// Kilo writes a token count the way the digest does: 10000 → "10k", 800 → "0.8k".
func Kilo(n int) string {
	return strconv.FormatFloat(float64(n)/1000, 'f', -1, 64) + "k"
}

// DigestRow renders the measured repeats of one plan as one digest row:
// medians for runtime and tok/s, with load shown apart and included, as the
// digest's TensorRT-LLM row does.
func DigestRow(recs []Record) string {
	if len(recs) == 0 {
		return ""
	}
	r0 := recs[0]
	var run, tps, runLoad, tpsLoad, ttft, dec, out []float64
	for _, r := range recs {
		m := r.Metrics
		run, tps, ttft, dec = append(run, m.RuntimeS), append(tps, m.TokPerS), append(ttft, m.TTFTS), append(dec, m.DecodeTokPerS)
		runLoad = append(runLoad, m.RuntimeWithLoadS)
		if m.RuntimeWithLoadS > 0 {
			tpsLoad = append(tpsLoad, float64(m.OutputTokens)/m.RuntimeWithLoadS)
		}
		out = append(out, float64(m.OutputTokens))
	}
	sRun, sTPS, sOut := Summarize(run), Summarize(tps), Summarize(out)
	notes := []string{
		fmt.Sprintf("median of %d", len(recs)),
		fmt.Sprintf("TTFT %.3f s", Summarize(ttft).Median),
		fmt.Sprintf("decode %.1f tok/s", Summarize(dec).Median),
		fmt.Sprintf("load %.2f s", r0.Metrics.LoadS),
	}
	if sp := sRun.Spread(); sp > 0.05 {
		notes = append(notes, fmt.Sprintf("runtime spread %.0f%%", 100*sp))
	}
	cached := 0
	for _, r := range recs {
		cached = max(cached, r.Result.CachedPromptTokens)
	}
	if cached > 0 {
		notes = append(notes, fmt.Sprintf("prefix cache served up to %d prompt tokens: TTFT is not a full prefill", cached))
	}
	if last := recs[len(recs)-1]; last.Result.OutputTokens < last.Workload.MaxNew {
		notes = append(notes, fmt.Sprintf("stopped early: %s at %d of %d", last.Result.Finish, last.Result.OutputTokens, last.Workload.MaxNew))
	}
	return fmt.Sprintf("| %s | %s->%s | %.2f (net) / %.2f (with load) | %.2f (net) / %.2f (with load) | %s | %s |\n",
		r0.Label, Kilo(r0.Prompt.Tokens), Kilo(r0.Workload.MaxNew),
		sRun.Median, Summarize(runLoad).Median, sTPS.Median, Summarize(tpsLoad).Median,
		formatCount(sOut.Median), strings.Join(notes, "; "))
}

func formatCount(f float64) string {
	n := int(f + 0.5)
	s := strconv.Itoa(n)
	if n >= 1000 {
		s = s[:len(s)-3] + "," + s[len(s)-3:]
	}
	return s
}

// WriteSummary prints each metric's median, min, max and 95% CI, and warns
// when the repeats disagree widely.
func WriteSummary(w io.Writer, recs []Record) {
	if len(recs) == 0 {
		return
	}
	rows := []struct {
		name string
		get  func(*Metrics) float64
	}{
		{"runtime_s", func(m *Metrics) float64 { return m.RuntimeS }},
		{"ttft_s", func(m *Metrics) float64 { return m.TTFTS }},
		{"decode_s", func(m *Metrics) float64 { return m.DecodeS }},
		{"tok_s", func(m *Metrics) float64 { return m.TokPerS }},
		{"decode_tok_s", func(m *Metrics) float64 { return m.DecodeTokPerS }},
		{"itl_p50_ms", func(m *Metrics) float64 { return m.ITLms.P50 }},
		{"itl_p99_ms", func(m *Metrics) float64 { return m.ITLms.P99 }},
	}
	fmt.Fprintf(w, "%-13s %10s %10s %10s %23s\n", "metric", "median", "min", "max", "95% CI of mean")
	var wide []string
	for _, row := range rows {
		xs := make([]float64, len(recs))
		for i, r := range recs {
			xs[i] = row.get(r.Metrics)
		}
		s := Summarize(xs)
		fmt.Fprintf(w, "%-13s %10.4g %10.4g %10.4g   [%9.4g, %9.4g]\n", row.name, s.Median, s.Min, s.Max, s.CI95[0], s.CI95[1])
		if s.N > 1 && s.Spread() > 0.10 && !strings.HasPrefix(row.name, "itl") {
			wide = append(wide, fmt.Sprintf("%s varies by %.0f%%", row.name, 100*s.Spread()))
		}
	}
	if len(wide) > 0 {
		fmt.Fprintf(w, "warning: repeats disagree (%s); the machine may be busy — use more repeats or a quieter host\n", strings.Join(wide, ", "))
	}
}

// GroupRecords groups ok records by label and workload, in first-seen
// order: one digest row per group.
func GroupRecords(recs []Record) [][]Record {
	var order []string
	groups := map[string][]Record{}
	for _, r := range recs {
		if r.Status != "ok" || r.Metrics == nil || r.Result == nil || r.Kind != "" {
			continue
		}
		key := fmt.Sprintf("%s|%s|%d|%d|%s", r.Label, r.Workload.Model, r.Prompt.Tokens, r.Workload.MaxNew, r.Prompt.Hash)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], r)
	}
	out := make([][]Record, len(order))
	for i, k := range order {
		out[i] = groups[k]
	}
	return out
}
