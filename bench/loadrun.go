package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// runLoad measures a workload with a Load: each repeat sends every request
// of the load and records each request, then the run's summary. A request
// that fails is recorded and the others go on; an engine that crashes or
// hangs ends the run (after its records are written).
func runLoad(ctx context.Context, eng driver.Engine, plan Plan, sink func(Record) error, progress io.Writer) ([]Record, error) {
	w := plan.Workload
	l := *w.Load
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(plan.Prompts) == 0 {
		return nil, errors.New("load run: no prompts")
	}
	seqs := eng.Info().Sequences()
	if l.Mode == LoadBatch && l.Batch > seqs {
		return nil, &driver.BatchLimitError{Engine: eng.Info().Engine, Batch: l.Batch, Limit: seqs}
	}
	reqs := make([]driver.Request, l.Total())
	for i := range reqs {
		reqs[i] = driver.Request{Prompt: plan.Prompts[i%len(plan.Prompts)].IDs, MaxNewTokens: w.MaxNew, IgnoreEOS: w.IgnoreEOS, Sampling: w.Sampling}
	}
	base := newBaseRecord(eng, plan)
	var recs []Record
	for i := range w.Warmup {
		n := min(l.Total(), seqs, warmupBatch(l))
		what := fmt.Sprintf("warmup %d/%d", i+1, w.Warmup)
		count := plan.begin(what, false, n)
		_, err := driver.GenerateBatch(ctx, eng, reqs[:n], func(_ int, ts []driver.Token) { count(len(ts)) })
		plan.end(err)
		if err != nil {
			return recs, fmt.Errorf("%s: %w", what, err)
		}
		logf(progress, "%s: a batch of %s", what, plural(n, "request"))
	}
	for rep := range w.Repeats {
		what := fmt.Sprintf("repeat %d/%d", rep+1, w.Repeats)
		if plan.Observer != nil {
			if err := plan.Observer.Start(ctx); err != nil {
				return recs, fmt.Errorf("%s: start telemetry: %w", what, err)
			}
		}
		count := plan.begin(what, true, len(reqs))
		outs, runErr := executeLoad(ctx, eng, l, reqs, count)
		plan.end(runErr)
		var telemetry *cuda.RunTelemetry
		if plan.Observer != nil {
			var terr error
			if telemetry, terr = plan.Observer.Stop(loadPhases(outs)); terr != nil && runErr == nil {
				return recs, fmt.Errorf("%s: stop telemetry: %w", what, terr)
			}
		}
		if outs == nil { // nothing was started: the batch was refused as a whole
			return recs, fmt.Errorf("%s: %w", what, runErr)
		}
		runRecs := loadRecords(base, plan, l, rep, outs, seqs, telemetry)
		if ctx.Err() != nil {
			markInterrupted(runRecs, what, context.Cause(ctx))
		}
		for _, r := range runRecs {
			if err := sink(r); err != nil {
				return recs, err
			}
		}
		recs = append(recs, runRecs...)
		sum := runRecs[len(runRecs)-1].Summary
		logf(progress, "%s: %s", what, sum.Line())
		if runErr == nil {
			runErr = fatal(outs)
		}
		if runErr != nil {
			return recs, fmt.Errorf("%s: %w", what, runErr)
		}
	}
	return recs, nil
}

// markInterrupted marks a load run that SIGINT or SIGTERM cut short: its
// aggregate, and each request that had not finished, are StatusInterrupted
// (requests that finished before stay StatusOK).
func markInterrupted(recs []Record, what string, cause error) {
	for i := range recs {
		r := &recs[i]
		if r.Kind == KindLoad || r.Status == StatusError {
			r.Status, r.Error = StatusInterrupted, fmt.Sprintf("%s: %v", what, cause)
		}
	}
}

// begin tells the plan's progress that a run of n requests starts, and
// returns what counts their tokens as they arrive (from any goroutine).
func (p Plan) begin(what string, measured bool, n int) func(int) {
	if p.Progress == nil {
		return func(int) {}
	}
	p.Progress.Begin(what, measured, len(p.Prompt.IDs), n*p.Workload.MaxNew)
	var received atomic.Int64
	return func(k int) { p.Progress.Tokens(int(received.Add(int64(k)))) }
}

func (p Plan) end(err error) {
	if p.Progress != nil {
		p.Progress.End(nil, err)
	}
}

// warmupBatch bounds a warmup batch: the load's own level, and a few
// requests for the rate mode (whose level is not a count).
func warmupBatch(l Load) int {
	switch l.Mode {
	case LoadBatch:
		return l.Batch
	case LoadConcurrency:
		return l.Concurrency
	default:
		return 4
	}
}

// executeLoad sends the requests as the load says and waits for them all.
// It returns nil outcomes only when nothing could start.
func executeLoad(ctx context.Context, eng driver.Engine, l Load, reqs []driver.Request, count func(int)) ([]loadOutcome, error) {
	outs := make([]loadOutcome, len(reqs))
	for i := range outs {
		outs[i].index = i
	}
	collect := func(i int) func([]driver.Token) {
		return func(ts []driver.Token) {
			outs[i].toks = append(outs[i].toks, ts...)
			count(len(ts))
		}
	}
	run := func(i int) {
		outs[i].res, outs[i].err = eng.Generate(ctx, reqs[i], collect(i))
	}
	switch l.Mode {
	case LoadBatch:
		t := driver.MonotonicNs()
		for i := range outs {
			outs[i].arrivalNs = t
		}
		res, err := driver.GenerateBatch(ctx, eng, reqs, func(i int, ts []driver.Token) { collect(i)(ts) })
		if err != nil {
			return nil, err
		}
		for i, o := range res {
			outs[i].res, outs[i].err = o.Result, o.Err
		}
	case LoadConcurrency:
		var next atomic.Int64
		var wg sync.WaitGroup
		for range l.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(reqs) {
						return
					}
					outs[i].arrivalNs = driver.MonotonicNs()
					run(i)
				}
			}()
		}
		wg.Wait()
	case LoadRate:
		arrivals := l.Arrivals()
		t0 := driver.MonotonicNs()
		var wg sync.WaitGroup
		for i := range reqs {
			due := t0 + arrivals[i]
			if d := due - driver.MonotonicNs(); d > 0 {
				select {
				case <-time.After(time.Duration(d)):
				case <-ctx.Done():
				}
			}
			outs[i].arrivalNs = due
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(i)
			}()
		}
		wg.Wait()
	}
	return outs, ctx.Err()
}

// fatal returns the failure that ends the run: an engine that crashed or
// hung (every later request would fail too). A request the engine merely
// failed is not.
func fatal(outs []loadOutcome) error {
	for _, o := range outs {
		var f *driver.EngineFailure
		if errors.As(o.err, &f) && f.Kind != "failed" {
			return o.err
		}
	}
	return nil
}

// loadPhases are the run's phases for the telemetry: first arrival, first
// token of any request, last token of any request.
func loadPhases(outs []loadOutcome) cuda.Phases {
	var p cuda.Phases
	for _, o := range outs {
		if p.SubmitNs == 0 || (o.arrivalNs > 0 && o.arrivalNs < p.SubmitNs) {
			p.SubmitNs = o.arrivalNs
		}
		if n := len(o.toks); n > 0 {
			if p.FirstTokenNs == 0 || o.toks[0].TimeNs < p.FirstTokenNs {
				p.FirstTokenNs = o.toks[0].TimeNs
			}
			p.LastTokenNs = max(p.LastTokenNs, o.toks[n-1].TimeNs)
		}
	}
	return p
}

// loadRecords turns one run's outcomes into a record per request and the
// run's summary record, last.
func loadRecords(base Record, plan Plan, l Load, rep int, outs []loadOutcome, seqs int, telemetry *cuda.RunTelemetry) []Record {
	t0 := outs[0].arrivalNs
	for _, o := range outs {
		t0 = min(t0, o.arrivalNs)
	}
	now := time.Now().UTC()
	recs := make([]Record, 0, len(outs)+1)
	for _, o := range outs {
		r := base
		r.Kind, r.Repeat, r.Time = KindRequest, rep, now
		r.Prompt = plan.Prompts[o.index%len(plan.Prompts)]
		rt := o.timing(t0, l.Goodput)
		r.Request = &rt
		if o.err == nil {
			res := o.res
			r.Result = &res
			if len(o.toks) > 0 {
				m := Measure(base.Engine.LoadNs, o.res, o.toks)
				r.Metrics, r.Output = &m, outputOf(o.res, o.toks)
			}
		}
		r.Status = StatusOK
		if o.failed() {
			r.Status, r.Error = StatusError, o.failure()
		}
		recs = append(recs, r)
	}
	sum := summarize(l, outs, seqs)
	r := base
	r.Kind, r.Repeat, r.Time, r.Status = KindLoad, rep, now, StatusOK
	r.Summary, r.Telemetry = &sum, telemetry
	if sum.Completed == 0 {
		r.Status, r.Error = StatusError, "every request failed; the first: "+outs[0].failure()
	}
	return append(recs, r)
}

// Line is the summary in one line, for progress output.
func (s LoadSummary) Line() string {
	line := fmt.Sprintf("%s: %d of %d requests completed, %d tokens in %.3f s: %.1f tok/s, %.3g req/s; TTFT p50 %.3f s p99 %.3f s; ITL p50 %.1f ms p99 %.1f ms; goodput %.3g req/s (TTFT ≤ %g s, ITL ≤ %g ms)",
		s.Load, s.Completed, s.Requests, s.OutputTokens, s.DurationS, s.OutputTokPerS, s.ReqPerS,
		s.TTFTS.P50, s.TTFTS.P99, s.ITLms.P50, s.ITLms.P99, s.Goodput.ReqPerS, s.Goodput.TTFTS, s.Goodput.ITLms)
	if s.DecodeTokPerS > 0 {
		line += fmt.Sprintf("; decode %.1f tok/s", s.DecodeTokPerS)
	}
	for _, n := range s.Notes {
		line += "\n  note: " + n
	}
	return line
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
