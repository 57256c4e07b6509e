package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// attribute is one thing two runs can differ in, as a row label shows it.
type attribute struct {
	name string
	get  func(bench.Record) string
}

// attributes are tried in this order; the first ones that differ go into
// the label.
var attributes = []attribute{
	{"prompt", func(r bench.Record) string { return r.Prompt.Source }},
	{"tokenizer", func(r bench.Record) string { return r.Prompt.Tokenizer }},
	{"ignore_eos", func(r bench.Record) string { return fmt.Sprint(r.Workload.IgnoreEOS) }},
	{"sampling", func(r bench.Record) string { return samplingText(r.Workload.Sampling) }},
	{"host", func(r bench.Record) string { return r.Host.Hostname }},
	{"from", func(r bench.Record) string { return importedFrom(r) }},
	{"lmdrive", func(r bench.Record) string { return r.Tool.Commit }},
}

// disambiguate adds to the label of rows that would otherwise look alike
// (same label and workload) what sets them apart: prompt source, tokenizer,
// engine config keys, host…; runs that differ in nothing are numbered by
// their run id.
func disambiguate(rows []Row) {
	groups := map[string][]int{}
	var order []string
	for i, r := range rows {
		// A failed row already looks unlike a measured one.
		k := fmt.Sprintf("%s|%d|%d|%v", r.Label, r.PromptTokens, r.MaxNew, r.Stats == nil)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		if len(idx) < 2 {
			continue
		}
		firsts := make([]bench.Record, len(idx))
		for j, i := range idx {
			firsts[j] = rows[i].Records[0]
		}
		extra := make([][]string, len(idx))
		for _, a := range attributes {
			vals := make([]string, len(idx))
			for j, r := range firsts {
				vals[j] = a.get(r)
			}
			// An unknown value tells nothing apart.
			if allSame(vals) || slices.Contains(vals, "") {
				continue
			}
			for j, v := range vals {
				extra[j] = append(extra[j], a.name+": "+v)
			}
		}
		for j, keys := range configDifferences(firsts) {
			extra[j] = append(extra[j], keys...)
		}
		labels := make([]string, len(idx))
		for j := range idx {
			labels[j] = strings.Join(extra[j], ", ")
		}
		if !allDistinct(labels) {
			// Nothing recorded tells them apart: name each run.
			for j, i := range idx {
				extra[j] = append(extra[j], "run "+strings.Join(rows[i].Runs, "+"))
			}
		}
		for j, i := range idx {
			rows[i].Label += " [" + strings.Join(extra[j], ", ") + "]"
		}
	}
}

// configDifferences lists, per record, the engine config keys whose values
// differ among the records ("key=value").
func configDifferences(recs []bench.Record) [][]string {
	cfgs := make([]map[string]any, len(recs))
	keys := map[string]bool{}
	for i, r := range recs {
		_ = json.Unmarshal(r.Workload.EngineConfig, &cfgs[i])
		for k := range cfgs[i] {
			keys[k] = true
		}
	}
	var differing []string
	for k := range keys {
		vals := make([]string, len(recs))
		for i, c := range cfgs {
			vals[i] = valueText(c[k])
		}
		if !allSame(vals) {
			differing = append(differing, k)
		}
	}
	slices.Sort(differing)
	out := make([][]string, len(recs))
	for i, c := range cfgs {
		for _, k := range differing {
			out[i] = append(out[i], k+"="+valueText(c[k]))
		}
	}
	return out
}

func valueText(v any) string {
	if v == nil {
		return "unset"
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// samplingText names the sampling: "greedy", or its settings.
func samplingText(s driver.Sampling) string {
	if s.Temperature == 0 {
		return "greedy"
	}
	return fmt.Sprintf("temperature=%g top_k=%d top_p=%g seed=%d", s.Temperature, s.TopK, s.TopP, s.Seed)
}

func allSame(vals []string) bool {
	for _, v := range vals[1:] {
		if v != vals[0] {
			return false
		}
	}
	return true
}

func allDistinct(vals []string) bool {
	seen := map[string]bool{}
	for _, v := range vals {
		if seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}
