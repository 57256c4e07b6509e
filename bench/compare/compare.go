// Package compare says which differences between two sets of runs are
// real, as benchstat does for Go benchmarks: per matching workload the old
// and new medians with their intervals, the change, and whether it is
// beyond the noise of the repeats (a Mann-Whitney U test, which holds for
// small samples and assumes no distribution, from golang.org/x/perf's
// benchmath); for greedy runs, where the generated token IDs part.
package compare

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
	"github.com/lmdrive/lmdrive/bench/report"
)

// Matching says how old and new runs are paired.
const (
	// ByWorkload pairs runs of the same configuration (label), model,
	// precision and prompt/gen lengths: the same setup, before and after.
	ByWorkload = "workload"
	// ByPrompt pairs runs that were handed identical prompt IDs (the same
	// hash) for the same number of new tokens, whatever the engine: one
	// engine against another.
	ByPrompt = "prompt"
)

// Alpha is the significance level: a p-value above it prints "~".
const Alpha = 0.05

// Metric is one compared quantity.
type Metric struct {
	Name   string
	Higher bool // higher is better
	Get    func(*bench.Metrics) float64
}

// Metrics are compared in this order.
var Metrics = []Metric{
	{"runtime_s", false, func(m *bench.Metrics) float64 { return m.RuntimeS }},
	{"tok_s", true, func(m *bench.Metrics) float64 { return m.TokPerS }},
	{"ttft_s", false, func(m *bench.Metrics) float64 { return m.TTFTS }},
	{"decode_tok_s", true, func(m *bench.Metrics) float64 { return m.DecodeTokPerS }},
	{"itl_p99_ms", false, func(m *bench.Metrics) float64 { return m.ITLms.P99 }},
	{"output_tokens", true, func(m *bench.Metrics) float64 { return float64(m.OutputTokens) }},
}

// Pair is one matched workload.
type Pair struct {
	Key      string `json:"key"`
	Title    string `json:"title"`
	OldLabel string `json:"old_label"`
	NewLabel string `json:"new_label"`
	Lines    []Line `json:"metrics"`
	// Divergence is where the first greedy repeats' token IDs part; nil
	// when either side sampled or kept no IDs.
	Divergence *eos.Divergence `json:"divergence,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
}

// Line is one metric of a pair.
type Line struct {
	Metric string        `json:"metric"`
	Old    bench.Summary `json:"old"`
	New    bench.Summary `json:"new"`
	// Delta is the change of the medians in percent, or "~" when the test
	// does not tell the two apart.
	Delta string  `json:"delta"`
	P     float64 `json:"p"`
	// Better is true when a significant change goes the good way.
	Significant bool     `json:"significant"`
	Better      bool     `json:"better"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Result is a whole comparison.
type Result struct {
	By    string `json:"by"`
	Pairs []Pair `json:"pairs"`
	// OnlyOld and OnlyNew list workloads without a partner.
	OnlyOld []string `json:"only_old,omitempty"`
	OnlyNew []string `json:"only_new,omitempty"`
}

// Compare pairs the successful repeats of old and new and tests each metric.
func Compare(old, new []bench.Record, by string) (Result, error) {
	if by != ByWorkload && by != ByPrompt {
		return Result{}, fmt.Errorf("--by %q: want %s or %s", by, ByWorkload, ByPrompt)
	}
	res := Result{By: by}
	og, order := group(old, by)
	ng, newOrder := group(new, by)
	for _, k := range order {
		n, ok := ng[k]
		if !ok {
			res.OnlyOld = append(res.OnlyOld, title(og[k][0], by))
			continue
		}
		res.Pairs = append(res.Pairs, pair(k, og[k], n, by))
	}
	for _, k := range newOrder {
		if _, ok := og[k]; !ok {
			res.OnlyNew = append(res.OnlyNew, title(ng[k][0], by))
		}
	}
	if len(res.Pairs) == 0 {
		return res, fmt.Errorf("no workload of the old runs matches one of the new (matching by %s); --by %s pairs runs on identical prompt ids across engines",
			by, ByPrompt)
	}
	return res, nil
}

// group collects the successful repeats by key, in first-seen order.
func group(recs []bench.Record, by string) (map[string][]bench.Record, []string) {
	out := map[string][]bench.Record{}
	var order []string
	for _, r := range recs {
		if r.Status != "ok" || r.Metrics == nil {
			continue
		}
		k := key(r, by)
		if _, ok := out[k]; !ok {
			order = append(order, k)
		}
		out[k] = append(out[k], r)
	}
	return out, order
}

func key(r bench.Record, by string) string {
	if by == ByPrompt {
		return fmt.Sprintf("%s|%d", r.Prompt.Hash, r.Workload.MaxNew)
	}
	return fmt.Sprintf("%s|%s|%s|%d|%d", r.Label, report.ModelName(r), report.Precision(r), r.Prompt.Tokens, r.Workload.MaxNew)
}

func title(r bench.Record, by string) string {
	wl := report.Kilo(r.Prompt.Tokens) + "->" + report.Kilo(r.Workload.MaxNew)
	if by == ByPrompt {
		return fmt.Sprintf("prompt %s (%s) · %s", shortHash(r.Prompt.Hash), r.Prompt.Source, wl)
	}
	return fmt.Sprintf("%s · %s %s · %s", r.Label, report.ModelName(r), strings.ToUpper(report.Precision(r)), wl)
}

func pair(k string, old, new []bench.Record, by string) Pair {
	p := Pair{Key: k, Title: title(old[0], by), OldLabel: old[0].Label, NewLabel: new[0].Label}
	for _, m := range Metrics {
		p.Lines = append(p.Lines, compareMetric(m, old, new))
	}
	if by == ByWorkload && old[0].Prompt.Hash != new[0].Prompt.Hash {
		p.Notes = append(p.Notes, fmt.Sprintf("the prompts differ (%s, %s against %s, %s): timings compare, token ids do not",
			shortHash(old[0].Prompt.Hash), old[0].Prompt.Source, shortHash(new[0].Prompt.Hash), new[0].Prompt.Source))
	}
	if greedy(old[0]) && greedy(new[0]) {
		d := eos.Compare(old[0].Prompt.Hash, new[0].Prompt.Hash, old[0].Output.IDs, new[0].Output.IDs)
		d.Summary = strings.NewReplacer("A chose", "old chose", "B chose", "new chose", "A has", "old has", "B ", "new ").Replace(d.Summary)
		p.Divergence = &d
	}
	return p
}

func compareMetric(m Metric, old, new []bench.Record) Line {
	xs, ys := values(m, old), values(m, new)
	l := Line{Metric: m.Name, Old: bench.Summarize(xs), New: bench.Summarize(ys)}
	th := benchmath.DefaultThresholds
	th.CompareAlpha = Alpha
	c := benchmath.AssumeNothing.Compare(benchmath.NewSample(xs, &th), benchmath.NewSample(ys, &th))
	l.P = c.P
	l.Delta = c.FormatDelta(l.Old.Median, l.New.Median)
	l.Significant = l.Delta != "~"
	if l.Significant {
		l.Better = (l.New.Median > l.Old.Median) == m.Higher
	}
	for _, w := range c.Warnings {
		// Identical samples on both sides are no difference, not a problem.
		if !strings.Contains(w.Error(), "all samples are equal") {
			l.Warnings = append(l.Warnings, w.Error())
		}
	}
	return l
}

func values(m Metric, recs []bench.Record) []float64 {
	out := make([]float64, len(recs))
	for i, r := range recs {
		out[i] = m.Get(r.Metrics)
	}
	return out
}

// greedy reports whether a run chose tokens deterministically and kept them.
func greedy(r bench.Record) bool {
	return r.Workload.Sampling.Temperature == 0 && r.Output != nil && len(r.Output.IDs) > 0
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// Write prints the comparison as benchstat does: per pair a table of
// metrics with old, new, the change and the test's p-value and sample sizes.
func Write(w io.Writer, r Result) error {
	var b strings.Builder
	for i, p := range r.Pairs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s\n", p.Title)
		if r.By == ByPrompt {
			fmt.Fprintf(&b, "  old: %s\n  new: %s\n", p.OldLabel, p.NewLabel)
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  \told\t\tnew\t\tdelta\t\n")
		for _, l := range p.Lines {
			mark := ""
			if l.Significant {
				mark = map[bool]string{true: " (better)", false: " (worse)"}[l.Better]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s%s\t%s\n", l.Metric, num(l.Old.Median), spread(l.Old), num(l.New.Median), spread(l.New),
				l.Delta, mark, pText(l))
		}
		tw.Flush()
		if p.Divergence != nil {
			fmt.Fprintf(&b, "  output ids: %s\n", p.Divergence.Summary)
		}
		for _, n := range uniqueWarnings(p) {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	for _, k := range r.OnlyOld {
		fmt.Fprintf(&b, "\nonly in old: %s", k)
	}
	for _, k := range r.OnlyNew {
		fmt.Fprintf(&b, "\nonly in new: %s", k)
	}
	if len(r.OnlyOld)+len(r.OnlyNew) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func uniqueWarnings(p Pair) []string {
	out := slices.Clone(p.Notes)
	for _, l := range p.Lines {
		for _, w := range l.Warnings {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

func pText(l Line) string {
	return fmt.Sprintf("(p=%.3f n=%d+%d)", l.P, l.Old.N, l.New.N)
}

// spread is the interval of the median as ±%, or what stands in for it.
func spread(s bench.Summary) string {
	if s.Interval == nil || s.Median == 0 {
		return "(n=1)"
	}
	v := max(s.Interval.Hi/s.Median-1, 1-s.Interval.Lo/s.Median)
	return fmt.Sprintf("±%.0f%%", 100*v)
}

func num(v float64) string {
	return fmt.Sprintf("%.4g", v)
}
