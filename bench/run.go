package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// Plan is one workload to measure on one engine.
type Plan struct {
	Label    string
	Workload Workload
	Prompt   Prompt
	// Prompts are the prompts of a load run (Workload.Load): request i gets
	// Prompts[i % len(Prompts)].
	Prompts  []Prompt
	Tool     Tool
	Repro    *Repro
	Overhead *Overhead
	// Observer, if set, watches every measured repeat (GPU telemetry).
	Observer Observer
	// Progress, if set, hears every repeat's tokens as they arrive.
	Progress Progress
}

// Progress follows one repeat at a time: Begin before the request is
// submitted, Tokens with the count received so far each time the engine
// hands tokens over, End when the repeat is over (m is nil on a failure).
type Progress interface {
	Begin(what string, measured bool, promptTokens, maxNew int)
	Tokens(received int)
	End(m *Metrics, err error)
}

// Observer watches one measured repeat: Start right before the request is
// submitted, Stop right after the result with the generation's phases; what
// Stop returns is recorded (cuda.Observer is the GPU one).
type Observer interface {
	Start(ctx context.Context) error
	Stop(phases cuda.Phases) (*cuda.RunTelemetry, error)
}

// Run executes plan.Workload.Warmup unrecorded runs, then Repeats measured
// ones, handing each measured Record to sink as soon as it exists. An
// engine failure is recorded too (status "error") before Run returns it.
//
// A workload with a Load runs each repeat as a load run instead: see runLoad.
func Run(ctx context.Context, eng driver.Engine, plan Plan, sink func(Record) error, progress io.Writer) ([]Record, error) {
	if plan.Workload.Load != nil {
		return runLoad(ctx, eng, plan, sink, progress)
	}
	w := plan.Workload
	req := driver.Request{Prompt: plan.Prompt.IDs, MaxNewTokens: w.MaxNew, IgnoreEOS: w.IgnoreEOS, Sampling: w.Sampling}
	base := newBaseRecord(eng, plan)
	var recs []Record
	for i := range w.Warmup + w.Repeats {
		measured := i >= w.Warmup
		what := fmt.Sprintf("warmup %d/%d", i+1, w.Warmup)
		if measured {
			what = fmt.Sprintf("repeat %d/%d", i-w.Warmup+1, w.Repeats)
		}
		if ctx.Err() != nil {
			// Interrupted between repeats: nothing is in flight.
			return recs, fmt.Errorf("stopped before %s: %w", what, context.Cause(ctx))
		}
		var toks []driver.Token
		observe := measured && plan.Observer != nil
		if observe {
			if err := plan.Observer.Start(ctx); err != nil {
				return recs, fmt.Errorf("%s: start telemetry: %w", what, err)
			}
		}
		if plan.Progress != nil {
			plan.Progress.Begin(what, measured, len(req.Prompt), w.MaxNew)
		}
		res, err := eng.Generate(ctx, req, func(ts []driver.Token) {
			toks = append(toks, ts...)
			if plan.Progress != nil {
				plan.Progress.Tokens(len(toks))
			}
		})
		var telemetry *cuda.RunTelemetry
		if observe {
			var terr error
			phases := cuda.Phases{SubmitNs: res.SubmitNs, FirstTokenNs: res.FirstNs, LastTokenNs: res.LastNs}
			if telemetry, terr = plan.Observer.Stop(phases); terr != nil && err == nil {
				return recs, fmt.Errorf("%s: stop telemetry: %w", what, terr)
			}
		}
		rec := base
		rec.Repeat = i - w.Warmup
		rec.Time = time.Now().UTC()
		if ctx.Err() != nil {
			if plan.Progress != nil {
				plan.Progress.End(nil, context.Cause(ctx))
			}
			return recs, interrupted(ctx, rec, what, measured, res, err, toks, sink)
		}
		if err != nil && plan.Progress != nil {
			plan.Progress.End(nil, err)
		}
		if err != nil {
			rec.Status, rec.Error = StatusError, err.Error()
			if serr := sink(rec); serr != nil {
				return recs, fmt.Errorf("%w (and the failure could not be recorded: %v)", err, serr)
			}
			return recs, fmt.Errorf("%s: %w", what, err)
		}
		m := Measure(eng.Info().LoadNs, res, toks)
		if plan.Progress != nil {
			plan.Progress.End(&m, nil)
		}
		if progress != nil {
			fmt.Fprintf(progress, "%s: %d tokens in %.3f s (TTFT %.3f s, %.1f tok/s decode), finish %s\n",
				what, m.OutputTokens, m.RuntimeS, m.TTFTS, m.DecodeTokPerS, res.Finish)
		}
		if res.CachedPromptTokens > 0 && progress != nil {
			fmt.Fprintf(progress, "warning: the engine served %d of %d prompt tokens from its prefix cache: TTFT is not a full prefill (turn prefix caching off)\n",
				res.CachedPromptTokens, res.PromptTokens)
		}
		if !measured {
			continue
		}
		rec.Status = StatusOK
		rec.Metrics, rec.Result, rec.Output, rec.Telemetry = &m, &res, outputOf(res, toks), telemetry
		if err := sink(rec); err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// newBaseRecord holds what every record of one run shares.
func newBaseRecord(eng driver.Engine, plan Plan) Record {
	return Record{
		Schema: Schema, RunID: newRunID(), Label: plan.Label, Tool: plan.Tool, Host: thisHost(),
		Engine: eng.Info(), Workload: plan.Workload, Prompt: plan.Prompt, Repro: plan.Repro, Overhead: plan.Overhead,
	}
}

// interrupted records the measured repeat that ctx's cancellation cut
// short, with what the engine produced until then (no metrics: they would
// describe a run that did not finish), and returns the error that ends Run.
func interrupted(ctx context.Context, rec Record, what string, measured bool, res driver.Result, genErr error, toks []driver.Token, sink func(Record) error) error {
	cause := context.Cause(ctx)
	if !measured {
		return fmt.Errorf("%s: %w (nothing measured yet, nothing recorded)", what, cause)
	}
	rec.Status, rec.Error = StatusInterrupted, fmt.Sprintf("%s: %v", what, cause)
	if genErr == nil {
		rec.Result, rec.Output = &res, outputOf(res, toks)
	} else if !errors.Is(genErr, context.Canceled) {
		rec.Error += "; the engine then failed: " + genErr.Error()
	}
	if err := sink(rec); err != nil {
		return fmt.Errorf("%s: %w (and the interruption could not be recorded: %v)", what, cause, err)
	}
	return fmt.Errorf("%s: %w (recorded as interrupted)", what, cause)
}

func outputOf(res driver.Result, toks []driver.Token) *Output {
	o := &Output{IDs: make([]int32, len(toks)), OffsetsNs: make([]int64, len(toks)), Bundles: make([]int, len(toks))}
	for i, t := range toks {
		o.IDs[i], o.OffsetsNs[i], o.Bundles[i] = t.ID, t.TimeNs-res.SubmitNs, t.Bundle
	}
	return o
}

func newRunID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:4])
}

// ErrorRecord is the record of a workload that failed before any repeat
// could run (the engine did not load, the prompt could not be built), so
// that a report shows the failure as a row.
func ErrorRecord(label string, tool Tool, w Workload, p Prompt, err error) Record {
	return Record{Schema: Schema, RunID: newRunID(), Time: time.Now().UTC(), Status: "error", Error: err.Error(),
		Label: label, Tool: tool, Host: thisHost(), Workload: w, Prompt: p}
}

func thisHost() Host {
	name, _ := os.Hostname()
	return Host{Hostname: name, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
}
