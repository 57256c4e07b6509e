package report

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
)

// spreadWarning is the runtime spread over repeats above which a row warns.
const spreadWarning = 0.10

// notes writes what a reader needs to trust or doubt a row, from the
// records alone: how many repeats and how sure, early stops with their
// named cause, clamps, whether load is included, spread, cold repeats,
// failures, and where imported numbers came from.
func notes(row Row, ok, failed []bench.Record, merged bool) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(failed) > 0 {
		what := "failed"
		if len(ok) > 0 {
			what = fmt.Sprintf("%d of %d repeats failed", len(failed), len(ok)+len(failed))
		}
		add("%s: %s", what, firstLine(failed[0].Error))
	}
	if merged && len(row.Runs) > 1 {
		add("%d runs merged", len(row.Runs))
	}
	if len(ok) == 0 {
		return out
	}
	s := row.Stats
	first := ok[0]
	if imp := first.Imported; imp != nil {
		out = append(out, importNotes(imp)...)
	}
	add("%s", sampleNote(s.Runtime, first))
	if s.TTFT.Median > 0 {
		add("TTFT %.3f s; decode %.1f tok/s", s.TTFT.Median, s.DecodeTokPerS.Median)
	}
	switch {
	case s.RuntimeWithLoad != nil:
		add("load %.2f s: \"with load\" adds it, \"net\" leaves it out", s.LoadS)
	case first.Imported != nil:
		add("load not measured")
	}
	if s.EnergyPerToken != nil {
		add("energy %.3g J/token", s.EnergyPerToken.Median)
	}
	if s.Runtime.N > 1 && s.Runtime.Spread() > spreadWarning {
		add("repeats disagree: runtime varies %.0f%% (busy host? more repeats?)", 100*s.Runtime.Spread())
	}
	if n := coldNote(ok); n != "" {
		add("%s", n)
	}
	if want := first.Workload.Repeats; !merged && want > 0 && len(ok)+len(failed) < want {
		add("incomplete: %d of %d repeats recorded", len(ok)+len(failed), want)
	}
	out = append(out, stopNotes(ok)...)
	out = append(out, clampNotes(ok)...)
	return out
}

// sampleNote says how many repeats the medians come from and how sure the
// runtime is.
func sampleNote(run bench.Summary, r bench.Record) string {
	if r.Imported != nil && r.Imported.Aggregate {
		return fmt.Sprintf("averages of %d requests as the tool reported them: no interval", r.Imported.Requests)
	}
	if run.Interval == nil {
		return "1 repeat: no interval"
	}
	what := "range"
	if run.Interval.Lo != run.Min || run.Interval.Hi != run.Max {
		what = "interval of the median"
	}
	return fmt.Sprintf("median of %d; runtime %s %.3g–%.3g s (%s confidence)", run.N, what, run.Interval.Lo, run.Interval.Hi,
		bench.Percent(run.Interval.Confidence))
}

// coldNote flags the first repeat of a run without warmup: it paid for
// first-use costs (allocations, kernel selection, caches) the others did not.
func coldNote(ok []bench.Record) string {
	var cold []bench.Record
	var warm []float64
	for _, r := range ok {
		if r.Workload.Warmup == 0 && r.Repeat == 0 && r.Imported == nil {
			cold = append(cold, r)
		} else {
			warm = append(warm, r.Metrics.RuntimeS)
		}
	}
	if len(cold) == 0 {
		return ""
	}
	if len(warm) == 0 {
		return "no warmup: every repeat here was cold"
	}
	return fmt.Sprintf("no warmup: repeat 1 was cold (%.3g s against a median of %.3g s for the others)",
		cold[0].Metrics.RuntimeS, bench.Summarize(warm).Median)
}

// stopNotes names why repeats stopped before max_new_tokens, with the
// early-stop decision tree (bench/eos) applied to each saved repeat.
func stopNotes(ok []bench.Record) []string {
	var early []bench.Record
	for _, r := range ok {
		if r.Metrics.OutputTokens < r.Workload.MaxNew {
			early = append(early, r)
		}
	}
	if len(early) == 0 {
		return nil
	}
	counts := map[string]int{}
	for _, r := range early {
		counts[fmt.Sprint(r.Metrics.OutputTokens)]++
	}
	at := make([]string, 0, len(counts))
	for k := range counts {
		at = append(at, k)
	}
	sort.Strings(at)
	where := fmt.Sprintf("stopped early at %s of %d", strings.Join(at, ", "), early[0].Workload.MaxNew)
	if len(early) < len(ok) {
		where = fmt.Sprintf("%d of %d repeats stopped early (at %s of %d)", len(early), len(ok), strings.Join(at, ", "), early[0].Workload.MaxNew)
	}
	if early[0].Result == nil || early[0].Output == nil {
		return []string{where + " (the records hold no engine result to name the cause)"}
	}
	verdicts := explain(early)
	if len(verdicts) == 0 {
		return []string{where}
	}
	var out []string
	for _, v := range verdicts {
		out = append(out, fmt.Sprintf("%s: %s — %s", where, v.Cause, v.Detail))
		where = "also"
	}
	return out
}

// explain runs the decision tree over saved repeats and returns each
// distinct verdict once. The model's own config files are read when the
// model is a folder here; otherwise what the engine reported is all there is.
func explain(recs []bench.Record) []eos.Verdict {
	files := eos.AuditInput{}
	if dir := recs[0].Workload.Model; dir != "" {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			files.ModelDir = dir
		}
	}
	reports, _, err := eos.ExplainRecords(recs, files, nil)
	if err != nil && files.ModelDir != "" {
		reports, _, err = eos.ExplainRecords(recs, eos.AuditInput{}, nil)
	}
	if err != nil {
		return nil
	}
	var out []eos.Verdict
	for _, rep := range reports {
		for _, s := range rep.Samples {
			if s.Verdict.Early && !slices.ContainsFunc(out, func(v eos.Verdict) bool { return v.Cause == s.Verdict.Cause && v.Detail == s.Verdict.Detail }) {
				out = append(out, s.Verdict)
			}
		}
	}
	return out
}

// clampNotes reports limits the engine applied to the request: a smaller
// max_new_tokens, a prompt cut short, ignore_eos not applied, a prefix
// cache serving part of the prompt.
func clampNotes(ok []bench.Record) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, r := range ok {
		res := r.Result
		if res == nil {
			continue
		}
		if res.MaxNewEffective > 0 && res.MaxNewEffective < r.Workload.MaxNew {
			src := ""
			if res.LimitSource != "" {
				src = " by " + res.LimitSource
			}
			add(fmt.Sprintf("clamped: the engine allowed %d new tokens of %d%s", res.MaxNewEffective, r.Workload.MaxNew, src))
		}
		if res.PromptTokens > 0 && r.Prompt.Tokens > 0 && res.PromptTokens != r.Prompt.Tokens {
			add(fmt.Sprintf("the engine saw %d prompt tokens, not the %d sent", res.PromptTokens, r.Prompt.Tokens))
		}
		if r.Workload.IgnoreEOS && !res.IgnoreEOSApplied {
			add("ignore_eos was asked for but the engine did not apply it")
		}
		if res.CachedPromptTokens > 0 {
			add(fmt.Sprintf("prefix cache served %d prompt tokens: TTFT is not a full prefill", res.CachedPromptTokens))
		}
	}
	return out
}

// importNotes says where imported numbers came from and what they mean.
func importNotes(imp *bench.Imported) []string {
	keys := make([]string, 0, len(imp.Definitions))
	for k := range imp.Definitions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	defs := make([]string, len(keys))
	for i, k := range keys {
		defs[i] = k + " = " + imp.Definitions[k]
	}
	return []string{fmt.Sprintf("imported from %s (%s)", imp.From, strings.Join(defs, "; "))}
}
