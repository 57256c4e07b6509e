package eos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// Investigation is one `lmdrive eos` run on an opened engine.
type Investigation struct {
	// Engine is the engine's name as the user gave it ("ref", "hf"…).
	Engine string
	// Request holds everything but the prompt: max/min new tokens,
	// ignore_eos and stop sequences. Watched ids are set from the audit.
	Request driver.Request
	Prompts []bench.Prompt
	// Audit names the files to audit; the engine's EOS ids and length
	// limit, the prompt length and max new tokens are filled in.
	Audit AuditInput
	// Control repeats each early sample with EOS on and with the length
	// forced by min_new_tokens.
	Control bool
	// Steps, if not nil, receives per-step records as JSON Lines.
	Steps io.Writer
	// Piece decodes an id for the report ("" when unknown).
	Piece func(int32) string
	// Warn, if not nil, hears the audit's warnings before anything runs.
	Warn func(string)
}

// Investigate audits the configs, runs every prompt with the stop ids'
// log-probabilities watched, and decides each sample's cause. log is the
// engine's log as the runner captured it (nil in-process: no log evidence).
func Investigate(ctx context.Context, eng driver.Engine, log *LogBuffer, inv Investigation) (Report, func(int32) string, error) {
	if len(inv.Prompts) == 0 {
		return Report{}, nil, fmt.Errorf("eos: no prompt to run")
	}
	info := eng.Info()
	in := inv.Audit
	in.EngineEOS, in.EngineMaxSeq = info.EOSIDs, info.MaxSeqLen
	in.UserStops, in.PromptTokens, in.MaxNew = inv.Request.StopSequences, len(inv.Prompts[0].IDs), inv.Request.MaxNewTokens
	audit, err := RunAudit(in)
	if err != nil {
		return Report{}, nil, err
	}
	if inv.Warn != nil {
		for _, w := range audit.Warnings {
			inv.Warn(w)
		}
	}
	pieces := PieceNamer(audit, inv.Piece)
	base := inv.Request
	base.WatchIDs, base.WantLogprobs = WatchIDs(audit, info.VocabSize), true
	report := Report{Engine: fmt.Sprintf("%s (%s %s)", inv.Engine, info.Backend, info.Version), Model: info.Model, Audit: audit}
	for i, p := range inv.Prompts {
		req := base
		req.Prompt = p.IDs
		run, err := runOnce(ctx, eng, req, log)
		if err != nil {
			return report, pieces, err
		}
		if i == 0 {
			report.Effective = EffectiveConfig(run.Result)
			report.Log = run.Log
		}
		steps := Steps(run, audit, pieces)
		sample := Sample{Index: i, Prompt: len(p.IDs), Hash: p.Hash, Finish: run.Result.Finish.String(),
			Verdict: Decide(run, audit, pieces), Output: outputIDs(run.Tokens), Steps: steps}
		if inv.Steps != nil {
			if err := WriteSteps(inv.Steps, i, steps); err != nil {
				return report, pieces, err
			}
		}
		if inv.Control && sample.Verdict.Early {
			if sample.Controls, err = controlRuns(ctx, eng, req, log); err != nil {
				return report, pieces, err
			}
		}
		report.Samples = append(report.Samples, sample)
	}
	return report, pieces, nil
}

// runOnce runs one request and collects what Decide needs.
func runOnce(ctx context.Context, eng driver.Engine, req driver.Request, log *LogBuffer) (Run, error) {
	log.Reset()
	var toks []driver.Token
	res, err := eng.Generate(ctx, req, func(ts []driver.Token) { toks = append(toks, ts...) })
	if err != nil {
		return Run{}, err
	}
	return Run{Requested: req.MaxNewTokens, IgnoreEOS: req.IgnoreEOS, MinNew: req.MinNewTokens, StopSequences: req.StopSequences,
		Prompt: req.Prompt, WatchIDs: req.WatchIDs, Tokens: toks, Result: res, Log: ScanLog(log.String())}, nil
}

// controlRuns repeats a request with EOS stops on, and with min_new_tokens
// forcing the full length.
func controlRuns(ctx context.Context, eng driver.Engine, req driver.Request, log *LogBuffer) ([]Control, error) {
	on := req
	on.IgnoreEOS, on.MinNewTokens = false, 0
	r, err := runOnce(ctx, eng, on, log)
	if err != nil {
		return nil, err
	}
	ctl := Control{Name: "eos-on", Generated: len(r.Tokens), Finish: r.Result.Finish.String()}
	ctl.Summary = fmt.Sprintf("with EOS stops on the model stops after %d tokens (%s)", len(r.Tokens), r.Result.Finish)
	if st := Steps(r, Audit{}, nil); len(st) > 0 && st[len(st)-1].PStop != nil {
		ctl.PStop = st[len(st)-1].PStop
		ctl.Summary += fmt.Sprintf(", P(stop ids) %.3g at that step", *ctl.PStop)
	}
	out := []Control{ctl}

	forced := req
	forced.MinNewTokens = req.MaxNewTokens
	if r, err = runOnce(ctx, eng, forced, log); err != nil {
		return nil, err
	}
	ctl = Control{Name: "forced-length", Generated: len(r.Tokens), Finish: r.Result.Finish.String()}
	ctl.Summary = fmt.Sprintf("with min_new_tokens=%d the engine produces %d tokens (%s)", forced.MinNewTokens, len(r.Tokens), r.Result.Finish)
	return append(out, ctl), nil
}

// ExplainRecords runs the audit and the decision tree over runs saved by
// `lmdrive run`: one report per run (run id), each judged with that run's
// own settings. What the engine reported is all there is: no watched
// log-probabilities, no control runs, no prompt ids.
func ExplainRecords(recs []bench.Record, files AuditInput, piece func(int32) string) ([]Report, func(int32) string, error) {
	var (
		reports []Report
		byRun   = map[string]int{}
		pieces  func(int32) string
	)
	for i, r := range recs {
		if r.Status != "ok" || r.Result == nil || r.Output == nil {
			continue
		}
		k, seen := byRun[r.RunID]
		if !seen {
			in := files
			in.EngineEOS, in.EngineMaxSeq, in.PromptTokens, in.MaxNew = r.Engine.EOSIDs, r.Engine.MaxSeqLen, r.Prompt.Tokens, r.Workload.MaxNew
			audit, err := RunAudit(in)
			if err != nil {
				return nil, nil, err
			}
			k = len(reports)
			byRun[r.RunID] = k
			reports = append(reports, Report{Engine: fmt.Sprintf("%s (%s %s)", r.Engine.Engine, r.Engine.Backend, r.Engine.Version),
				Model: r.Engine.Model, Run: r.RunID, Audit: audit, Effective: EffectiveConfig(*r.Result)})
		}
		rep := &reports[k]
		if pieces == nil {
			pieces = PieceNamer(rep.Audit, piece)
		}
		toks := make([]driver.Token, len(r.Output.IDs))
		for j, id := range r.Output.IDs {
			toks[j] = driver.Token{ID: id, Index: j, TimeNs: r.Result.SubmitNs + r.Output.OffsetsNs[j], Bundle: r.Output.Bundles[j],
				Logprob: driver.Logprob(math.NaN())}
		}
		run := Run{Requested: r.Workload.MaxNew, IgnoreEOS: r.Workload.IgnoreEOS, Tokens: toks, Result: *r.Result}
		rep.Samples = append(rep.Samples, Sample{Index: i, Prompt: r.Prompt.Tokens, Hash: r.Prompt.Hash, Finish: r.Result.Finish.String(),
			Verdict: Decide(run, rep.Audit, pieces), Output: r.Output.IDs, Steps: Steps(run, rep.Audit, pieces)})
	}
	if len(reports) == 0 {
		return nil, nil, fmt.Errorf("the file holds no successful runs to explain")
	}
	return reports, pieces, nil
}

// CompareReports aligns the samples of two saved reports and writes, per
// sample, where their outputs part and each one's verdict.
func CompareReports(w io.Writer, a, b Report) {
	fmt.Fprintf(w, "A: %s\nB: %s\n", a.Engine, b.Engine)
	for i := range min(len(a.Samples), len(b.Samples)) {
		sa, sb := a.Samples[i], b.Samples[i]
		d := Compare(sa.Hash, sb.Hash, sa.Output, sb.Output)
		fmt.Fprintf(w, "sample %d: %s\n  A: %s (%s)\n  B: %s (%s)\n", i, d.Summary, sa.Verdict.Cause, sa.Verdict.Detail, sb.Verdict.Cause, sb.Verdict.Detail)
	}
}

// EffectiveConfig is the request as the engine applied it, in one line.
func EffectiveConfig(r driver.Result) string {
	limit := ""
	if r.LimitSource != "" && r.MaxNewEffective < r.MaxNewRequested {
		limit = ", limited by " + r.LimitSource
	}
	return fmt.Sprintf("max_new_tokens=%d (effective %d%s)  ignore_eos=%v  stop_ids=%v", r.MaxNewRequested,
		r.MaxNewEffective, limit, r.IgnoreEOSApplied, r.StopIDs)
}

// WatchIDs are the ids whose probability each step reports: the stop
// universe, within the engine's vocabulary.
func WatchIDs(a Audit, vocab int) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, s := range a.Universe {
		if !seen[s.ID] && int(s.ID) < vocab {
			seen[s.ID] = true
			out = append(out, s.ID)
		}
	}
	return out
}

// PieceNamer names tokens by the audit's added tokens, else by decode.
func PieceNamer(a Audit, decode func(int32) string) func(int32) string {
	names := map[int32]string{}
	for _, s := range a.Universe {
		names[s.ID] = s.Piece
	}
	return func(id int32) string {
		if n, ok := names[id]; ok && n != "" {
			return n
		}
		if decode == nil {
			return ""
		}
		return decode(id)
	}
}

// WriteSteps writes a sample's steps as JSON Lines.
func WriteSteps(w io.Writer, sample int, steps []Step) error {
	enc := json.NewEncoder(w)
	for _, s := range steps {
		if err := enc.Encode(struct {
			Sample int `json:"sample"`
			Step
		}{sample, s}); err != nil {
			return fmt.Errorf("write steps: %w", err)
		}
	}
	return nil
}

func outputIDs(toks []driver.Token) []int32 {
	out := make([]int32, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

// LogBuffer collects an engine's log; the runner writes it from another
// goroutine while Investigate reads it between runs.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Reset forgets what was written.
func (l *LogBuffer) Reset() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
