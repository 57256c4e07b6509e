package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// Setup is what a benchmark session needs besides its workloads: the engine
// to open, how prompts are made, and what to watch.
type Setup struct {
	Open driver.OpenOptions
	// Model is the model as the user named it (a folder or random:<preset>):
	// it labels rows and its files are fingerprinted.
	Model   string
	Prompts PromptOptions
	// PromptTokens and MaxNew are the lengths the session will run,
	// checked against the model's limits before it loads (0: unchecked).
	PromptTokens, MaxNew int
	// GPUs lists the NVML indices to sample ("0,1"); "" watches the
	// engine's own devices.
	GPUs           string
	SampleInterval time.Duration
	// Telemetry opens the GPU telemetry source (nvml.Open); nil runs
	// without telemetry.
	Telemetry func() (cuda.Telemetry, error)
	// Overhead measures lmdrive's own cost per token with the ref engine's
	// zero-compute mode, through the same path (runner or in-process); for
	// a Python engine, with its adapter's zero-compute mode in its worker.
	Overhead bool
	Tool     Tool
	// Log receives progress lines for a person; nil is quiet.
	Log io.Writer
	// Progress, if set, follows every repeat's tokens (a progress bar).
	Progress Progress
}

// Session is one opened engine with everything around it: the prompt maker,
// the reproducibility block, GPU telemetry and the harness overhead. Every
// workload run on it shares them, and the model is loaded once.
type Session struct {
	setup    Setup
	eng      driver.Engine
	prompts  *PromptMaker
	repro    Repro
	observer Observer
	overhead *Overhead
	closers  []func() error
}

// OpenSession checks what can be checked without an engine (prompt options,
// the tokenizer), then opens the engine and prepares telemetry.
func OpenSession(ctx context.Context, s Setup) (_ *Session, err error) {
	prompts, err := NewPromptMaker(s.Prompts)
	if err != nil {
		return nil, err
	}
	ses := &Session{setup: s, prompts: prompts}
	ses.closers = append(ses.closers, func() error { prompts.Close(); return nil })
	defer func() {
		if err != nil {
			ses.Close()
		}
	}()
	// Everything checked here costs nothing before a 72B load, a lot after it.
	pre := Preflight{Engine: s.Open.Engine, Model: s.Model, EngineConfig: s.Open.Config, PromptTokens: s.PromptTokens, MaxNew: s.MaxNew}
	if s.Prompts.Source == SourceText {
		if pre.Tokenizer, err = prompts.Tokenizer(); err != nil {
			return nil, err
		}
	}
	warnings, err := pre.Check()
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		ses.logf("warning: %s", w)
	}
	if s.GPUs != "" {
		if _, err := cuda.ParseGPUList(s.GPUs); err != nil {
			return nil, fmt.Errorf("--gpus: %w", err)
		}
	}
	if s.SampleInterval < 0 {
		return nil, fmt.Errorf("--sample-interval %s is negative; give a positive duration such as 100ms", s.SampleInterval)
	}
	if ses.repro, err = CollectRepro(s.Model); err != nil {
		return nil, err
	}
	ses.logf("loading %s (%s)", s.Open.Engine, s.Model)
	if ses.eng, err = driver.Open(ctx, s.Open); err != nil {
		return nil, err
	}
	ses.closers = append(ses.closers, ses.eng.Close)
	info := ses.eng.Info()
	ses.logf("loaded %s %s from %s (%s, %s) in %.2f s", info.Backend, info.Version, info.Library, info.Model, info.Dtype, float64(info.LoadNs)/1e9)
	if err := ses.watchGPUs(info); err != nil {
		return nil, err
	}
	if s.Overhead {
		if oh, err := ses.measureOverhead(ctx); err != nil {
			ses.logf("harness overhead not measured: %v", err)
		} else {
			ses.overhead = &oh
			ses.logf("harness overhead: %.2f µs per engine step, %.2f µs per token delivered (%s, %d tokens, zero-compute engine)",
				oh.EngineStepUs, oh.DeliveryUs, oh.Path, oh.Tokens)
		}
	}
	return ses, nil
}

// watchGPUs adds the GPU inventory to the reproducibility block and sets up
// the observer of the GPUs to sample. Without telemetry it says so once
// (when GPUs are in play) and the session goes on.
func (s *Session) watchGPUs(info driver.Info) error {
	gpus := info.DeviceIDs
	if s.setup.GPUs != "" {
		var err error
		if gpus, err = cuda.ParseGPUList(s.setup.GPUs); err != nil {
			return err
		}
	}
	if s.setup.Telemetry == nil {
		return nil
	}
	t, err := s.setup.Telemetry()
	if err != nil {
		if len(gpus) > 0 {
			s.logf("no GPU telemetry: %v", err)
		}
		return nil
	}
	s.closers = append(s.closers, t.Close)
	if inv, err := cuda.ReadInventory(t); err == nil {
		s.repro.GPU = &inv
		s.repro.Libraries = cuda.ProbeLibraries()
	}
	if len(gpus) == 0 {
		return nil
	}
	obs, err := cuda.NewObserver(t, gpus, s.setup.SampleInterval)
	if err != nil {
		return err
	}
	s.observer = obs
	return nil
}

func (s *Session) measureOverhead(ctx context.Context) (Overhead, error) {
	o := s.setup.Open
	o.Engine, o.Config, o.Log = "ref", json.RawMessage(`{"model":"random:tiny","calibrate":true}`), nil
	path := "runner"
	if o.InProcess {
		path = "in-process"
	}
	if driver.IsPythonEngine(s.setup.Open.Engine) {
		// A Python engine's own adapter, in its worker, without a model.
		o.Engine, o.Config = s.setup.Open.Engine, json.RawMessage(`{"calibrate":true}`)
		path = "python worker (" + o.Engine + " adapter)"
	}
	eng, err := driver.Open(ctx, o)
	if err != nil {
		return Overhead{}, err
	}
	defer eng.Close()
	return MeasureOverhead(ctx, eng, 20000, path)
}

// Engine is the opened engine.
func (s *Session) Engine() driver.Engine { return s.eng }

// Info is what the engine reported about itself.
func (s *Session) Info() driver.Info { return s.eng.Info() }

// Prompts is the session's prompt maker.
func (s *Session) Prompts() *PromptMaker { return s.prompts }

// Prompt builds a prompt of exactly tokens ids for seed. A prompt longer
// than the loaded engine says it takes is refused here, before prefill.
func (s *Session) Prompt(tokens int, seed uint64) (Prompt, error) {
	if limit := s.Info().MaxInputLen; limit > 0 && tokens > limit {
		return Prompt{}, fmt.Errorf("a prompt of %d tokens is longer than the %d the engine takes (its max_input_len, reported after loading %s)",
			tokens, limit, s.setup.Model)
	}
	p, err := s.prompts.Make(tokens, seed, s.Info().VocabSize)
	if err == nil {
		s.logf("prompt: %d tokens, %s (%s)", p.Tokens, p.Source, p.Hash)
	}
	return p, err
}

// LoadPrompts builds the prompts of a load run, each of exactly tokens ids:
// one when the load gives every request the same prompt, else one per
// request (request i: seed + i, so request 0 has the single-run prompt).
func (s *Session) LoadPrompts(tokens int, seed uint64, l Load) ([]Prompt, error) {
	n := l.Total()
	if l.SamePrompt {
		n = 1
	}
	out := make([]Prompt, n)
	for i := range out {
		p, err := s.prompts.Make(tokens, seed+uint64(i), s.Info().VocabSize)
		if err != nil {
			return nil, fmt.Errorf("prompt of request %d: %w", i, err)
		}
		out[i] = p
	}
	s.logf("prompts: %d of %d tokens, %s (seed %d and up)", n, tokens, out[0].Source, seed)
	return out, nil
}

// RunLoad measures a workload with a Load (w.Load) on the session's engine:
// request i gets prompts[i % len(prompts)].
func (s *Session) RunLoad(ctx context.Context, label string, w Workload, prompts []Prompt, sink func(Record) error) ([]Record, error) {
	if w.Load == nil || len(prompts) == 0 {
		return nil, fmt.Errorf("load run: no load or no prompts")
	}
	plan := s.plan(label, w, prompts[0])
	plan.Prompts = prompts
	return Run(ctx, s.eng, plan, sink, s.setup.Log)
}

func (s *Session) plan(label string, w Workload, p Prompt) Plan {
	if w.Model == "" {
		w.Model = s.setup.Model
	}
	if w.EngineConfig == nil {
		w.EngineConfig = s.setup.Open.Config
	}
	repro := s.repro
	return Plan{Label: label, Workload: w, Prompt: p, Tool: s.setup.Tool, Repro: &repro, Overhead: s.overhead, Observer: s.observer,
		Progress: s.setup.Progress}
}

// Run measures one workload on the session's engine (see Run), handing each
// record to sink as soon as it exists.
func (s *Session) Run(ctx context.Context, label string, w Workload, p Prompt, sink func(Record) error) ([]Record, error) {
	return Run(ctx, s.eng, s.plan(label, w, p), sink, s.setup.Log)
}

// Close closes the engine, telemetry and tokenizer, newest first.
func (s *Session) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

func (s *Session) logf(format string, args ...any) {
	if s.setup.Log != nil {
		fmt.Fprintf(s.setup.Log, format+"\n", args...)
	}
}

// DefaultLabel is the Engine / Config text of a row when the user gave
// none: engine, backend and model, then what sets the run apart.
func DefaultLabel(engine, model string, info driver.Info, ignoreEOS bool) string {
	label := fmt.Sprintf("%s (%s, %s", engine, info.Backend, model)
	if info.TPSize > 1 {
		label += fmt.Sprintf(", tp=%d", info.TPSize)
	}
	if ignoreEOS {
		label += ", ignore_eos"
	}
	return label + ")"
}
