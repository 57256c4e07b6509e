// Package report turns result records into the digest a person reads: the
// seed digest's tables (one per model and precision, a row per engine and
// configuration) with notes written from the data, in markdown, CSV, JSON
// or the Go benchmark format.
package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
)

// Options shape a digest.
type Options struct {
	// Merge puts every run of the same configuration and workload into one
	// row; by default each run (one `lmdrive run` or one sweep cell) is a row.
	Merge bool
}

// Digest is the report: tables grouped as the seed digest groups them.
type Digest struct {
	Records int     `json:"records"`
	Tables  []Table `json:"tables"`
	// Environment says where and when the records were made, one line per
	// host, as the seed digest's preamble does.
	Environment []string `json:"environment"`
}

// Table holds the rows of one model at one precision.
type Table struct {
	Precision string `json:"precision"`
	Model     string `json:"model"`
	Rows      []Row  `json:"rows"`
}

// Row is one line of a digest table: one run, or with Merge every run of one
// configuration and workload.
type Row struct {
	Date string `json:"date"`
	// Label is the Engine / Config text, with what sets the row apart from
	// rows that would otherwise look the same.
	Label        string `json:"label"`
	Model        string `json:"model"`
	Precision    string `json:"precision"`
	PromptTokens int    `json:"prompt_tokens"`
	MaxNew       int    `json:"max_new_tokens"`
	// Status is "ok", "partial" (some repeats failed) or "error".
	Status string   `json:"status"`
	Error  string   `json:"error,omitempty"`
	Runs   []string `json:"runs"`
	// Stats are over the measured repeats that succeeded; nil without any.
	Stats *RowStats `json:"stats,omitempty"`
	Notes []string  `json:"notes"`
	// Records are the row's records, oldest first (ok and failed).
	Records []bench.Record `json:"-"`
}

// RowStats summarizes a row's successful repeats.
type RowStats struct {
	Runtime         bench.Summary  `json:"runtime_s"`
	RuntimeWithLoad *bench.Summary `json:"runtime_with_load_s,omitempty"`
	TokPerS         bench.Summary  `json:"tok_s"`
	TokPerSWithLoad *bench.Summary `json:"tok_s_with_load,omitempty"`
	TTFT            bench.Summary  `json:"ttft_s"`
	DecodeTokPerS   bench.Summary  `json:"decode_tok_s"`
	OutputTokens    bench.Summary  `json:"output_tokens"`
	LoadS           float64        `json:"load_s,omitempty"`
	// EnergyPerToken is joules per output token over every watched GPU,
	// submit to last token; nil without GPU telemetry.
	EnergyPerToken *bench.Summary `json:"energy_j_per_token,omitempty"`
}

// Build groups records into the digest's tables and rows and writes each
// row's notes.
func Build(recs []bench.Record, o Options) Digest {
	d := Digest{Records: len(recs), Environment: environment(recs)}
	type tableKey struct{ precision, model string }
	tables := map[tableKey]*Table{}
	var order []tableKey
	for _, g := range groupRows(recs, o.Merge) {
		row := newRow(g, o.Merge)
		k := tableKey{row.Precision, row.Model}
		t, ok := tables[k]
		if !ok {
			t = &Table{Precision: row.Precision, Model: row.Model}
			tables[k] = t
			order = append(order, k)
		}
		t.Rows = append(t.Rows, row)
	}
	// Precision sections in a fixed order, models as first seen.
	slices.SortStableFunc(order, func(a, b tableKey) int { return cmp.Compare(precisionRank(a.precision), precisionRank(b.precision)) })
	for _, k := range order {
		t := tables[k]
		disambiguate(t.Rows)
		d.Tables = append(d.Tables, *t)
	}
	return d
}

// Rows lists every row of every table.
func (d Digest) Rows() []Row {
	var out []Row
	for _, t := range d.Tables {
		out = append(out, t.Rows...)
	}
	return out
}

// groupRows puts records into rows: by run id, or with merge by
// configuration and workload. Rows keep the order their first record had.
func groupRows(recs []bench.Record, merge bool) [][]bench.Record {
	var order []string
	groups := map[string][]bench.Record{}
	for _, r := range recs {
		if r.Kind != "" {
			continue // a load run's records: bench.WriteLoadTable shows them
		}
		k := r.RunID
		if merge || k == "" {
			k = configKey(r)
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([][]bench.Record, len(order))
	for i, k := range order {
		g := groups[k]
		slices.SortStableFunc(g, func(a, b bench.Record) int { return a.Time.Compare(b.Time) })
		out[i] = g
	}
	return out
}

// configKey is what makes two runs the same measurement.
func configKey(r bench.Record) string {
	w := r.Workload
	return strings.Join([]string{r.Label, ModelName(r), Precision(r), fmt.Sprint(r.Prompt.Tokens, w.MaxNew, w.IgnoreEOS, w.Sampling),
		r.Prompt.Source, canonicalJSON(w.EngineConfig), r.Host.Hostname, importedFrom(r)}, "|")
}

func newRow(g []bench.Record, merged bool) Row {
	first := g[0]
	row := Row{Date: first.Time.UTC().Format("2006-01-02"), Label: first.Label, Model: ModelName(first), Precision: Precision(first),
		PromptTokens: first.Prompt.Tokens, MaxNew: first.Workload.MaxNew, Records: g}
	if row.Label == "" {
		row.Label = first.Engine.Engine
	}
	var ok, failed []bench.Record
	for _, r := range g {
		if !slices.Contains(row.Runs, r.RunID) {
			row.Runs = append(row.Runs, r.RunID)
		}
		if r.Status == "ok" && r.Metrics != nil {
			ok = append(ok, r)
		} else {
			failed = append(failed, r)
		}
	}
	switch {
	case len(failed) == 0:
		row.Status = "ok"
	case len(ok) == 0:
		row.Status = "error"
	default:
		row.Status = "partial"
	}
	if len(failed) > 0 {
		row.Error = firstLine(failed[0].Error)
	}
	if len(ok) > 0 {
		row.Stats = rowStats(ok)
	}
	row.Notes = notes(row, ok, failed, merged)
	return row
}

func rowStats(ok []bench.Record) *RowStats {
	var run, runLoad, tps, tpsLoad, ttft, dec, out, energy []float64
	s := &RowStats{}
	for _, r := range ok {
		m := r.Metrics
		run, tps, ttft, dec = append(run, m.RuntimeS), append(tps, m.TokPerS), append(ttft, m.TTFTS), append(dec, m.DecodeTokPerS)
		out = append(out, float64(m.OutputTokens))
		if m.LoadS > 0 {
			runLoad = append(runLoad, m.RuntimeWithLoadS)
			if m.RuntimeWithLoadS > 0 {
				tpsLoad = append(tpsLoad, float64(m.OutputTokens)/m.RuntimeWithLoadS)
			}
			s.LoadS = m.LoadS
		}
		if j, ok := energyPerToken(r); ok {
			energy = append(energy, j)
		}
	}
	s.Runtime, s.TokPerS, s.TTFT, s.DecodeTokPerS, s.OutputTokens = bench.Summarize(run), bench.Summarize(tps), bench.Summarize(ttft), bench.Summarize(dec), bench.Summarize(out)
	if len(runLoad) == len(ok) {
		a, b := bench.Summarize(runLoad), bench.Summarize(tpsLoad)
		s.RuntimeWithLoad, s.TokPerSWithLoad = &a, &b
	}
	if len(energy) == len(ok) {
		e := bench.Summarize(energy)
		s.EnergyPerToken = &e
	}
	return s
}

// energyPerToken is the joules of every watched GPU from submit to the last
// token, over the output tokens.
func energyPerToken(r bench.Record) (float64, bool) {
	t := r.Telemetry
	if t == nil || len(t.Energy) == 0 || r.Metrics == nil || r.Metrics.OutputTokens == 0 {
		return 0, false
	}
	total := 0.0
	for _, g := range t.Energy {
		j, ok := g.Total.EnergyJ.Get()
		if !ok {
			return 0, false
		}
		total += j
	}
	return total / float64(r.Metrics.OutputTokens), true
}

// Precision is the precision a record ran at: as the sweep asked it, else
// the weights' type the engine reported ("int8/fp32" is int8 weights with
// fp32 activations), else the engine config's keys.
func Precision(r bench.Record) string {
	if r.Sweep != nil && r.Sweep.Precision != "" {
		return strings.ToLower(r.Sweep.Precision)
	}
	if dt := r.Engine.Dtype; dt != "" {
		weights, _, _ := strings.Cut(dt, "/")
		return strings.ToLower(weights)
	}
	var cfg map[string]any
	if json.Unmarshal(r.Workload.EngineConfig, &cfg) == nil {
		for _, k := range []string{"weights", "precision", "dtype"} {
			if v, ok := cfg[k].(string); ok && v != "" {
				return strings.ToLower(v)
			}
		}
	}
	return "unknown"
}

var precisionOrder = []string{"fp32", "fp16", "bf16", "fp8", "int8", "int4"}

func precisionRank(p string) int {
	if i := slices.Index(precisionOrder, p); i >= 0 {
		return i
	}
	return len(precisionOrder)
}

// ModelName is the model as a table heading: a folder's name, or a random
// preset marked as such.
func ModelName(r bench.Record) string {
	m := r.Workload.Model
	if m == "" {
		m = r.Engine.Model
	}
	switch {
	case m == "":
		return "unknown model"
	case strings.HasPrefix(m, "random:"):
		return strings.TrimPrefix(m, "random:") + " (random weights)"
	case strings.Contains(m, string(filepath.Separator)) && r.Imported == nil:
		return filepath.Base(filepath.Clean(m))
	}
	return m
}

func importedFrom(r bench.Record) string {
	if r.Imported == nil {
		return ""
	}
	return r.Imported.From
}

// canonicalJSON re-encodes a JSON object with sorted keys, so that equal
// configs compare equal.
func canonicalJSON(raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	const limit = 240
	if len(s) > limit {
		s = s[:limit-1] + "…"
	}
	return s
}

// environment describes the hosts the records come from: dates, the
// machine (GPUs and driver from the record's inventory, else the CPU), and
// the lmdrive builds.
func environment(recs []bench.Record) []string {
	type host struct {
		first, last time.Time
		records     int
		machine     string
		tools       []string
	}
	hosts := map[string]*host{}
	var order []string
	for _, r := range recs {
		name := r.Host.Hostname
		if r.Imported != nil {
			name = "imported from " + r.Imported.From
		}
		h := hosts[name]
		if h == nil {
			h = &host{first: r.Time, last: r.Time}
			hosts[name] = h
			order = append(order, name)
		}
		h.records++
		if r.Time.Before(h.first) {
			h.first = r.Time
		}
		if r.Time.After(h.last) {
			h.last = r.Time
		}
		if h.machine == "" {
			h.machine = machineOf(r)
		}
		if t := strings.TrimSpace(r.Tool.Version + " " + r.Tool.Commit); r.Imported == nil && t != "" && !slices.Contains(h.tools, t) {
			h.tools = append(h.tools, t)
		}
	}
	var out []string
	for _, name := range order {
		h := hosts[name]
		when := h.first.UTC().Format("2006-01-02")
		if last := h.last.UTC().Format("2006-01-02"); last != when {
			when += " to " + last
		}
		line := fmt.Sprintf("%s: %d records, %s", cmp.Or(name, "unknown host"), h.records, when)
		if h.machine != "" {
			line += "; " + h.machine
		}
		if len(h.tools) > 0 {
			line += "; lmdrive " + strings.Join(h.tools, ", ")
		}
		out = append(out, line)
	}
	return out
}

// machineOf names a record's machine: its GPUs, driver and CUDA version
// when the record holds the GPU inventory, else its CPU.
func machineOf(r bench.Record) string {
	if r.Repro == nil {
		return ""
	}
	if inv := r.Repro.GPU; inv != nil && len(inv.Devices) > 0 {
		counts := map[string]int{}
		var names []string
		for _, d := range inv.Devices {
			if counts[d.Name] == 0 {
				names = append(names, d.Name)
			}
			counts[d.Name]++
		}
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%d × %s", counts[n], n)
		}
		s := strings.Join(parts, ", ")
		if v, ok := inv.System.DriverVersion.Get(); ok {
			s += ", driver " + v
		}
		if v, ok := inv.System.CUDADriverVersion.Get(); ok {
			s += ", CUDA " + v
		}
		return s
	}
	return r.Repro.CPU
}
