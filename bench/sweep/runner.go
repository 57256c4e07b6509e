package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lmdrive/lmdrive/bench"
)

// Display follows a sweep (progress.Display is the one on a terminal).
type Display interface {
	bench.Progress
	Log() io.Writer
	StartSweep(total int, work float64)
	CellStart(i int, name string, work float64)
	CellDone(err error)
}

// Runner runs cells and writes their records.
type Runner struct {
	Plan Plan
	// Base is what every session shares: library search, timeouts, engine
	// log, telemetry, tool; the runner sets the engine, config, model,
	// prompts, log and progress of each.
	Base bench.Setup
	// Open opens a session (bench.OpenSession; tests give a fake).
	Open func(context.Context, bench.Setup) (Session, error)
	// Sink receives every record (the results file's Write).
	Sink    func(bench.Record) error
	Display Display
}

// Session is what a runner needs of an opened engine (bench.Session).
type Session interface {
	Prompt(tokens int, seed uint64) (bench.Prompt, error)
	Run(ctx context.Context, label string, w bench.Workload, p bench.Prompt, sink func(bench.Record) error) ([]bench.Record, error)
	// A batch above 1 is a load run (bench.Load, mode batch).
	LoadPrompts(tokens int, seed uint64, l bench.Load) ([]bench.Prompt, error)
	RunLoad(ctx context.Context, label string, w bench.Workload, prompts []bench.Prompt, sink func(bench.Record) error) ([]bench.Record, error)
	Close() error
}

// Outcome counts what a sweep did.
type Outcome struct {
	Ran, Failed int
	Records     []bench.Record
}

// Done returns the keys of the cells a results file already holds in
// full: a run with every repeat recorded and none failed. A sweep resumed
// on the same file skips them.
func Done(recs []bench.Record, plan string) map[string]bool {
	type run struct {
		ok, failed, want int
	}
	runs := map[string]*run{}
	cellOf := map[string]string{}
	for _, r := range recs {
		if r.Sweep == nil || r.Sweep.Plan != plan || r.Kind == bench.KindRequest {
			continue // a load run counts by its summaries, one a repeat
		}
		st := runs[r.RunID]
		if st == nil {
			st = &run{want: r.Workload.Repeats}
			runs[r.RunID] = st
			cellOf[r.RunID] = r.Sweep.Cell
		}
		if r.Status == "ok" {
			st.ok++
		} else {
			st.failed++
		}
	}
	done := map[string]bool{}
	for id, st := range runs {
		if st.failed == 0 && st.ok >= st.want {
			done[cellOf[id]] = true
		}
	}
	return done
}

// Run measures cells in order. Consecutive cells of one session share one
// loaded engine; a session that fails to open, or a cell that fails,
// is recorded as an error row and the sweep goes on (after a failed cell
// the engine is opened afresh, since a crash may have taken it down).
// Only a cancelled context stops the sweep early.
func (r *Runner) Run(ctx context.Context, cells []Cell) (Outcome, error) {
	var out Outcome
	work := 0.0
	for _, c := range cells {
		work += c.Work()
	}
	r.Display.StartSweep(len(cells), work)
	var (
		ses     Session
		current string
		openErr error
	)
	closeSession := func() {
		if ses != nil {
			ses.Close()
			ses = nil
		}
		current = ""
	}
	defer closeSession()
	for i, c := range cells {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r.Display.CellStart(i, c.Name(), c.Work())
		if c.Session != current {
			closeSession()
			current = c.Session
			ses, openErr = r.Open(ctx, r.setup(c))
			if openErr != nil {
				ses = nil
				openErr = fmt.Errorf("open %s for %s: %w", c.Engine.Engine, c.Model, openErr)
			}
		}
		recs, err := r.runCell(ctx, ses, openErr, c)
		out.Records = append(out.Records, recs...)
		out.Ran++
		if err != nil {
			out.Failed++
			if ctx.Err() != nil {
				r.Display.CellDone(err)
				return out, ctx.Err()
			}
			if openErr == nil {
				closeSession() // the next cell opens the engine afresh
			}
			var sinkErr sinkError
			if errors.As(err, &sinkErr) {
				r.Display.CellDone(err)
				return out, sinkErr.err
			}
		}
		r.Display.CellDone(err)
	}
	return out, nil
}

// runCell measures one cell on ses, or records why it could not.
func (r *Runner) runCell(ctx context.Context, ses Session, openErr error, c Cell) ([]bench.Record, error) {
	w := bench.Workload{Model: c.Model, EngineConfig: c.Config, MaxNew: c.Workload.Gen, IgnoreEOS: c.IgnoreEOS,
		Warmup: c.Warmup, Repeats: c.Repeats}
	sink := func(rec bench.Record) error {
		rec.Sweep = c.Ref(r.Plan.Name)
		if rec.Engine.Engine == "" {
			rec.Engine.Engine = c.Engine.Engine
		}
		if err := r.Sink(rec); err != nil {
			return sinkError{err}
		}
		return nil
	}
	fail := func(p bench.Prompt, err error) ([]bench.Record, error) {
		rec := bench.ErrorRecord(c.Label(), r.Base.Tool, w, p, err)
		if serr := sink(rec); serr != nil {
			return nil, serr
		}
		return []bench.Record{rec}, err
	}
	if openErr != nil {
		return fail(bench.Prompt{Tokens: c.Workload.Prompt}, openErr)
	}
	if c.Batch > 1 { // the batch dimension: c.Batch requests in one engine step
		w.Load = &bench.Load{Mode: bench.LoadBatch, Batch: c.Batch, Goodput: bench.DefaultSLO}
		ps, err := ses.LoadPrompts(c.Workload.Prompt, r.Plan.Seed, *w.Load)
		if err != nil {
			return fail(bench.Prompt{Tokens: c.Workload.Prompt}, fmt.Errorf("prompts: %w", err))
		}
		return ses.RunLoad(ctx, c.Label(), w, ps, sink)
	}
	p, err := ses.Prompt(c.Workload.Prompt, r.Plan.Seed)
	if err != nil {
		return fail(bench.Prompt{Tokens: c.Workload.Prompt}, fmt.Errorf("prompt: %w", err))
	}
	recs, err := ses.Run(ctx, c.Label(), w, p, sink)
	return recs, err
}

// sinkError is a failure to write results: it stops the sweep, since
// nothing measured after it could be kept.
type sinkError struct{ err error }

func (s sinkError) Error() string { return s.err.Error() }
func (s sinkError) Unwrap() error { return s.err }

// setup is the session of a cell.
func (r *Runner) setup(c Cell) bench.Setup {
	s := r.Base
	s.Open.Engine, s.Open.Config = c.Engine.Engine, c.Config
	s.Model = c.Model
	s.Prompts = r.Plan.PromptOptions()
	s.Log = r.Display.Log()
	s.Progress = r.Display
	return s
}

// Pending drops the cells done already holds, keeping the plan's order.
func Pending(cells []Cell, done map[string]bool) []Cell {
	var out []Cell
	for _, c := range cells {
		if !done[c.Key] {
			out = append(out, c)
		}
	}
	return out
}
