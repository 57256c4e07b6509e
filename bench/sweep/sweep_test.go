package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report"
)

const samplePlan = `
name: small
repeats: 2
warmup: 0
prompt: {source: ids}
models: [random:tiny, random:tiny-untied]
engines:
  - engine: ref
    device: cpu
    precision: [fp32]
  - engine: trtllm
    models: [/engines/qwen14b-tp2]
    tp: [2]
    precision: [fp16]
    precisions: {fp16: {}}
    workloads: [{prompt: 64, gen: 8}, {prompt: 128, gen: 16}]
workloads:
  - {prompt: 64, gen: 8}
  - {prompt: 128, gen: 16}
`

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan("small.yaml", []byte(samplePlan))
	if err != nil {
		t.Fatal(err)
	}
	if p.Out != "results/small.jsonl" || p.Repeats != 2 || *p.Warmup != 0 || !*p.IgnoreEOS || p.Seed != 1 || p.Prompt.Source != "ids" {
		t.Fatalf("defaults: %+v", p)
	}
	if e := p.Engines[1]; e.TP[0] != 2 || e.Models[0] != "/engines/qwen14b-tp2" || len(p.Engines[0].Models) != 2 || p.Engines[0].TP[0] != 1 {
		t.Fatalf("engine lists: %+v", p.Engines)
	}
	bad := []struct{ plan, want string }{
		{"name: x\nengins: []\n", `plan bad.yaml:2:1: unknown field "engins"`},
		{"name: x\nrepeats: two\n", "plan bad.yaml:2:10: a string where a int belongs"},
		{"repeats: 1\n", "name: give the plan a name"},
		{"name: x\nengines: [{engine: ref}]\nmodels: [random:tiny]\n", "workloads: give at least one prompt/gen pair"},
		{"name: x\nengines: [{engine: ref}]\nmodels: [random:tiny]\nprecision: [fp12]\nworkloads: [{prompt: 1, gen: 1}]\n", `precision "fp12": want one of fp32, fp16, bf16, int8, fp8`},
		{"name: x\nengines: [{engine: vllm}]\nmodels: [m]\nprecision: [fp16]\nworkloads: [{prompt: 1, gen: 1}]\n", "say which config keys select it for vllm"},
		{"name: x\nengines: [{engine: ref}]\nmodels: [m]\nbatch: [0]\nworkloads: [{prompt: 1, gen: 1}]\n", "batch 0: give batch sizes of at least 1"},
		{"name: x\nengines: [{engine: ref}]\nworkloads: [{prompt: 1, gen: 1}]\n", "no models"},
		{"name: x\nengines: [{engine: ref}]\nmodels: [m]\nworkloads: [{prompt: 0, gen: 1}]\n", "workloads[0]: prompt and gen must both be at least 1"},
		{"name: x\nengines: [{engine: ref, workloads: [{prompt: 5, gen: -1}]}]\nmodels: [m]\nworkloads: [{prompt: 1, gen: 1}]\n", "engines[0] (ref): workloads[0]: prompt and gen"},
		{"name: x\nprompt: {source: words}\nengines: [{engine: ref}]\nmodels: [m]\nworkloads: [{prompt: 1, gen: 1}]\n", `--prompt-source "words"`},
	}
	for _, b := range bad {
		if _, err := ParsePlan("bad.yaml", []byte(b.plan)); err == nil || !strings.Contains(err.Error(), b.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", b.plan, err, b.want)
		}
	}
}

func TestCellsAndShards(t *testing.T) {
	p, _ := ParsePlan("small.yaml", []byte(samplePlan))
	cells, err := p.Cells()
	if err != nil || len(cells) != 6 { // ref: 2 models × 2 workloads; trtllm: 1 × 2
		t.Fatalf("%d cells, %v", len(cells), err)
	}
	if cells[0].Name() != "ref fp32 tp=1 random:tiny 0.064k->0.008k" || cells[5].Name() != "trtllm fp16 tp=2 /engines/qwen14b-tp2 0.128k->0.016k" {
		t.Fatalf("names %q %q", cells[0].Name(), cells[5].Name())
	}
	if cells[0].Label() != "ref (cpu, tp=1, ignore_eos)" || !strings.Contains(string(cells[0].Config), `"dtype":"fp32"`) {
		t.Fatalf("label %q config %s", cells[0].Label(), cells[0].Config)
	}
	// Cells of one loaded engine share a session and sit together.
	if cells[0].Session != cells[1].Session || cells[1].Session == cells[2].Session || cells[4].Session != cells[5].Session {
		t.Fatal("sessions")
	}
	keys := map[string]bool{}
	for _, c := range cells {
		keys[c.Key] = true
	}
	again, _ := p.Cells()
	if len(keys) != 6 || again[3].Key != cells[3].Key {
		t.Fatal("cell keys are not distinct and stable")
	}
	// A changed repeat count is a different measurement.
	p.Repeats = 5
	if changed, _ := p.Cells(); changed[0].Key == cells[0].Key {
		t.Fatal("repeats do not change the key")
	}
	// Shards split the cells in order, without overlap or loss.
	for _, n := range []int{1, 4, 6, 7} {
		var all []string
		for i := range n {
			s := Shard(cells, i, n)
			if len(s) > (len(cells)+n-1)/n || len(s) < len(cells)/n {
				t.Errorf("shard %d/%d has %d cells", i, n, len(s))
			}
			for _, c := range s {
				all = append(all, c.Key)
			}
		}
		if len(all) != len(cells) || all[0] != cells[0].Key || all[5] != cells[5].Key {
			t.Errorf("%d shards hold %d cells", n, len(all))
		}
	}
	if i, n, err := ParseShard("3/8"); err != nil || i != 3 || n != 8 {
		t.Fatal("ParseShard")
	}
	for _, bad := range []string{"8/8", "-1/2", "1", "a/b", "0/0"} {
		if _, _, err := ParseShard(bad); err == nil {
			t.Errorf("shard %q accepted", bad)
		}
	}
}

// fakeSession is a test double of bench.Session: its runs make ok records
// (or fail where told), and it counts how often it was opened.
type fakeSession struct {
	s     *fakeEngines
	setup bench.Setup
}

type fakeEngines struct {
	opens    map[string]int
	failOpen string // model that does not load
	failRun  int    // fail the n-th Run call (1-based), 0: never
	runs     int
	closed   int
	loads    []bench.Load // the loads of RunLoad calls
}

func (f *fakeEngines) open(_ context.Context, s bench.Setup) (Session, error) {
	f.opens[s.Model]++
	if s.Model == f.failOpen {
		return nil, errors.New("out of memory")
	}
	return &fakeSession{s: f, setup: s}, nil
}

func (f *fakeSession) Prompt(tokens int, seed uint64) (bench.Prompt, error) {
	return bench.RandomPrompt(tokens, 1000, seed)
}

func (f *fakeSession) Run(_ context.Context, label string, w bench.Workload, p bench.Prompt, sink func(bench.Record) error) ([]bench.Record, error) {
	f.s.runs++
	var out []bench.Record
	for i := range w.Repeats {
		rec := bench.Record{Schema: bench.Schema, RunID: fmt.Sprintf("run%d", f.s.runs), Repeat: i, Status: "ok", Label: label, Workload: w, Prompt: p,
			Metrics: &bench.Metrics{OutputTokens: w.MaxNew, RuntimeS: 1, TokPerS: float64(w.MaxNew)}}
		if f.s.runs == f.s.failRun && i == 1 {
			rec.Status, rec.Metrics, rec.Error = "error", nil, "engine crashed during decode"
			sink(rec)
			return out, errors.New("engine crashed during decode")
		}
		if err := sink(rec); err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// LoadPrompts and RunLoad: a batch run records its requests and a summary
// per repeat, as bench.Session does.
func (f *fakeSession) LoadPrompts(tokens int, seed uint64, l bench.Load) ([]bench.Prompt, error) {
	out := make([]bench.Prompt, l.Total())
	for i := range out {
		out[i], _ = bench.RandomPrompt(tokens, 1000, seed+uint64(i))
	}
	return out, nil
}

func (f *fakeSession) RunLoad(_ context.Context, label string, w bench.Workload, ps []bench.Prompt, sink func(bench.Record) error) ([]bench.Record, error) {
	f.s.runs++
	f.s.loads = append(f.s.loads, *w.Load)
	var out []bench.Record
	for i := range w.Repeats {
		for k := range ps {
			out = append(out, bench.Record{Schema: bench.Schema, RunID: fmt.Sprintf("run%d", f.s.runs), Repeat: i, Kind: bench.KindRequest,
				Status: "ok", Label: label, Workload: w, Prompt: ps[k], Metrics: &bench.Metrics{OutputTokens: w.MaxNew}})
		}
		out = append(out, bench.Record{Schema: bench.Schema, RunID: fmt.Sprintf("run%d", f.s.runs), Repeat: i, Kind: bench.KindLoad,
			Status: "ok", Label: label, Workload: w, Prompt: ps[0], Summary: &bench.LoadSummary{Requests: len(ps), Completed: len(ps)}})
	}
	for _, r := range out {
		if err := sink(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (f *fakeSession) Close() error { f.s.closed++; return nil }

// quietDisplay is a Display that shows nothing.
type quietDisplay struct{ started, done int }

func (q *quietDisplay) Begin(string, bool, int, int) {}
func (q *quietDisplay) Tokens(int)                   {}
func (q *quietDisplay) End(*bench.Metrics, error)    {}
func (q *quietDisplay) Log() io.Writer               { return nil }
func (q *quietDisplay) StartSweep(int, float64)      {}
func (q *quietDisplay) CellStart(int, string, float64) {
	q.started++
}
func (q *quietDisplay) CellDone(error) { q.done++ }

func TestRunnerLoadsOnceRecordsFailuresAndResumes(t *testing.T) {
	p, _ := ParsePlan("small.yaml", []byte(samplePlan))
	cells, _ := p.Cells()
	cells = cells[:4] // the ref cells: two models, two workloads each
	engines := &fakeEngines{opens: map[string]int{}, failOpen: "random:tiny-untied", failRun: 1}
	var written []bench.Record
	disp := &quietDisplay{}
	r := &Runner{Plan: p, Open: engines.open, Sink: func(rec bench.Record) error { written = append(written, rec); return nil }, Display: disp}
	out, err := r.Run(context.Background(), cells)
	if err != nil {
		t.Fatal(err)
	}
	// Cell 0 fails at its second repeat: the engine is opened again for
	// cell 1; tiny-untied fails to load, once, and both its cells say so.
	if engines.opens["random:tiny"] != 2 || engines.opens["random:tiny-untied"] != 1 || engines.closed != 2 {
		t.Fatalf("opens %v, closed %d", engines.opens, engines.closed)
	}
	if out.Ran != 4 || out.Failed != 3 || disp.started != 4 || disp.done != 4 {
		t.Fatalf("outcome %+v", out)
	}
	var failedLoads int
	for _, rec := range written {
		if rec.Sweep == nil || rec.Sweep.Plan != "small" || rec.Sweep.Precision != "fp32" || rec.Engine.Engine != "ref" {
			t.Fatalf("record without its cell: %+v", rec)
		}
		if strings.Contains(rec.Error, "open ref for random:tiny-untied: out of memory") {
			failedLoads++
		}
	}
	if failedLoads != 2 || len(written) != 2+2+1+1 {
		t.Fatalf("%d failed loads in %d records", failedLoads, len(written))
	}
	// The failures show as rows of the digest, with their error.
	d := report.Build(written, report.Options{})
	if rows := d.Rows(); len(rows) != 4 || rows[0].Status != "partial" || rows[2].Status != "error" || !strings.Contains(rows[2].Error, "out of memory") {
		t.Fatalf("rows %+v", rows)
	}

	// Resuming: only the complete cell is skipped.
	done := Done(written, "small")
	if len(done) != 1 || !done[cells[1].Key] || len(Done(written, "other-plan")) != 0 {
		t.Fatalf("done %v", done)
	}
	todo := Pending(cells, done)
	if len(todo) != 3 || todo[0].Key != cells[0].Key || todo[1].Key != cells[2].Key {
		t.Fatalf("pending %d", len(todo))
	}
}

// The batch dimension: a cell with a batch above 1 is a load run of that
// many requests in one step, recorded request by request, and resuming
// counts it by its summaries.
func TestRunnerBatchCells(t *testing.T) {
	p, err := ParsePlan("b.yaml", []byte("name: b\nengines: [{engine: ref}]\nmodels: [random:tiny]\nbatch: [1, 4]\nrepeats: 2\nworkloads: [{prompt: 16, gen: 4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cells, _ := p.Cells()
	if len(cells) != 2 || cells[1].Batch != 4 || !strings.Contains(cells[1].Name(), "batch=4") {
		t.Fatalf("cells %+v", cells)
	}
	engines := &fakeEngines{opens: map[string]int{}}
	var written []bench.Record
	r := &Runner{Plan: p, Open: engines.open, Sink: func(rec bench.Record) error { written = append(written, rec); return nil }, Display: &quietDisplay{}}
	if _, err := r.Run(context.Background(), cells); err != nil {
		t.Fatal(err)
	}
	if len(engines.loads) != 1 || engines.loads[0].Mode != bench.LoadBatch || engines.loads[0].Batch != 4 {
		t.Fatalf("loads %+v", engines.loads)
	}
	if len(written) != 2+2*(4+1) {
		t.Fatalf("%d records", len(written))
	}
	if done := Done(written, "b"); !done[cells[0].Key] || !done[cells[1].Key] {
		t.Fatalf("done %v", done)
	}
}

// The shipped plans parse, and the seed plan holds every cell of the seed
// digest: its engines, models, precisions, TP sizes and prompt/gen pairs.
func TestShippedPlans(t *testing.T) {
	plans, _ := filepath.Glob("../../docs/plans/*.yaml")
	if len(plans) < 2 {
		t.Fatalf("plans: %v", plans)
	}
	for _, f := range plans {
		if _, err := ReadPlan(f); err != nil {
			t.Errorf("%v", err)
		}
	}
	p, err := ReadPlan("../../docs/plans/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cells, err := p.Cells()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range cells {
		have[fmt.Sprintf("%s %s %s tp=%d %d->%d", c.Engine.Engine, c.Precision, filepath.Base(c.Model), c.TP, c.Workload.Prompt, c.Workload.Gen)] = true
	}
	// The seed digest's rows.
	for _, want := range []string{
		"vllm fp16 Qwen2.5-72B tp=2 10000->800",
		"hf fp16 Qwen2.5-32B tp=2 10000->800", "vllm fp16 Qwen2.5-32B tp=2 20000->1000", "turbomind fp16 Qwen2.5-32B tp=2 20000->1000",
		"trtllm fp16 qwen2.5-32b-fp16-tp2 tp=2 10000->800", "turbomind fp16 Qwen2.5-32B tp=2 10000->800",
		"hf fp16 Qwen2.5-14B tp=2 10000->800", "turbomind fp16 Qwen2.5-14B tp=2 10000->800", "vllm fp16 Qwen2.5-14B tp=2 10000->800",
		"trtllm fp16 qwen2.5-14b-fp16-tp2 tp=2 10000->800",
		"hf int8 Qwen2.5-14B tp=2 10000->800", "hf int8 Qwen2.5-32B tp=2 10000->800", "hf int8 Qwen2.5-72B tp=2 10000->800",
	} {
		if !have[want] {
			t.Errorf("the seed plan lacks %q", want)
		}
	}
	if _, err := os.Stat("../../docs/plans/seed.yaml"); err != nil {
		t.Fatal(err)
	}
}
