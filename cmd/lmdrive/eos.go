package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/urfave/cli/v2"
)

func eosCommand() *cli.Command {
	return &cli.Command{
		Name:  "eos",
		Usage: "say exactly why a generation stopped before --max-new",
		Description: `Audits every token id and length limit that can end the request (model and
engine config files), runs the request with EOS log-probabilities watched at every
step, names the cause with a decision tree and lists the evidence. Exits 3 when a
sample stopped early. With --compare A.json B.json it aligns two saved reports.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "engine", Value: "ref", Usage: "engine library to load, or a Python engine (hf, vllm, lmdeploy, trtllm-py)"},
			&cli.StringFlag{Name: "model", Value: "random:tiny", Usage: "checkpoint folder or random:<preset>"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of random weights and prompts"},
			&cli.IntFlag{Name: "prompt-tokens", Value: 512, Usage: "prompt length in tokens"},
			&cli.StringFlag{Name: "prompt-ids", Usage: "JSON file with the prompt as an array of token ids (instead of a generated prompt)"},
			&cli.IntFlag{Name: "max-new", Value: 800, Usage: "tokens requested"},
			&cli.BoolFlag{Name: "ignore-eos", Usage: "request ignore_eos"},
			&cli.IntFlag{Name: "min-new", Usage: "min_new_tokens of the request"},
			&cli.StringSliceFlag{Name: "stop", Usage: "a stop sequence as space-separated token ids; repeat for more"},
			&cli.IntFlag{Name: "samples", Value: 1, Usage: "prompts to try (seed, seed+1, …)"},
			&cli.BoolFlag{Name: "control", Usage: "also run each early sample with EOS on and with the length forced (min_new_tokens)"},
			&cli.StringFlag{Name: "model-dir", Usage: "Hugging Face folder to audit (default: --model when it is a folder)"},
			&cli.StringFlag{Name: "engine-config-file", Usage: "the engine's config to audit: TensorRT-LLM engine config.json, LMDeploy config.yaml/config.ini, or their folder"},
			&cli.StringFlag{Name: "steps", Usage: "write per-step records (JSON Lines) here"},
			&cli.StringFlag{Name: "json", Usage: "write the report as JSON here"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where the ref engine runs"},
			&cli.IntFlag{Name: "tp", Value: 1, Usage: "tensor-parallel size"},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads of the ref engine"},
			&cli.StringFlag{Name: "engine-config", Usage: "extra engine config keys as a JSON object"},
			libPathFlag(),
			pythonFlag(),
			&cli.StringSliceFlag{Name: "compare", Usage: "compare two saved reports: --compare A.json --compare B.json"},
			&cli.StringFlag{Name: "record", Usage: "explain the runs saved in a results file (lmdrive run --out) instead of running anything"},
		}, workloadPromptFlags()...),
		Action: eosAction,
	}
}

func eosAction(c *cli.Context) error {
	if cmp := c.StringSlice("compare"); len(cmp) > 0 {
		return compareReports(c, cmp)
	}
	if path := c.String("record"); path != "" {
		return explainRecords(c, path)
	}
	stops, err := parseStops(c.StringSlice("stop"))
	if err != nil {
		return err
	}
	cfg, err := engineConfig(c)
	if err != nil {
		return err
	}
	name := c.String("engine")
	var log lockedBuffer
	var eng driver.Engine
	if driver.IsPythonEngine(name) {
		eng, err = startPython(c, name, cfg, &log)
	} else {
		lib, ferr := driver.DefaultSearch(c.String("lib-path")).Find(name, driver.FileExists)
		if ferr != nil {
			return ferr
		}
		eng, err = driver.StartRunner(c.Context, driver.RunnerOptions{Engine: name, Library: lib, Config: cfg, Log: &log})
	}
	if err != nil {
		return err
	}
	defer eng.Close()
	info := eng.Info()

	maker := &promptMaker{c: c}
	defer maker.Close()
	prompts, err := eosPrompts(c, maker, info.VocabSize)
	if err != nil {
		return err
	}
	modelDir := c.String("model-dir")
	if st, err := os.Stat(c.String("model")); modelDir == "" && err == nil && st.IsDir() {
		modelDir = c.String("model")
	}
	audit, err := eos.RunAudit(eos.AuditInput{ModelDir: modelDir, EngineConfig: c.String("engine-config-file"), EngineEOS: info.EOSIDs,
		EngineMaxSeq: info.MaxSeqLen, UserStops: stops, PromptTokens: len(prompts[0].IDs), MaxNew: c.Int("max-new")})
	if err != nil {
		return err
	}
	for _, w := range audit.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning before running: %s\n", w)
	}
	pieces := pieceNamer(audit, maker)
	watch := watchIDs(audit, info)

	var stepsOut *os.File
	if p := c.String("steps"); p != "" {
		if stepsOut, err = os.Create(p); err != nil {
			return fmt.Errorf("--steps: %w", err)
		}
		defer stepsOut.Close()
	}
	report := eos.Report{Engine: fmt.Sprintf("%s (%s %s)", name, info.Backend, info.Version), Model: info.Model, Audit: audit}
	base := driver.Request{MaxNewTokens: c.Int("max-new"), MinNewTokens: c.Int("min-new"), IgnoreEOS: c.Bool("ignore-eos"),
		StopSequences: stops, WatchIDs: watch, WantLogprobs: true}
	for i, p := range prompts {
		req := base
		req.Prompt = p.IDs
		run, err := eosRun(c, eng, req, &log)
		if err != nil {
			return err
		}
		if i == 0 {
			report.Effective = fmt.Sprintf("max_new_tokens=%d (effective %d%s)  ignore_eos=%v  stop_ids=%v", run.Result.MaxNewRequested,
				run.Result.MaxNewEffective, limitNote(run.Result), run.Result.IgnoreEOSApplied, run.Result.StopIDs)
			report.Log = run.Log
		}
		steps := eos.Steps(run, audit, pieces)
		sample := eos.Sample{Index: i, Prompt: len(p.IDs), Hash: p.Hash, Finish: run.Result.Finish.String(),
			Verdict: eos.Decide(run, audit, pieces), Output: tokenIDs(run.Tokens), Steps: steps}
		if stepsOut != nil {
			if err := writeSteps(stepsOut, i, steps); err != nil {
				return err
			}
		}
		if c.Bool("control") && sample.Verdict.Early {
			sample.Controls, err = controlRuns(c, eng, req, &log)
			if err != nil {
				return err
			}
		}
		report.Samples = append(report.Samples, sample)
	}
	return finishReport(c, report, pieces, "a sample stopped early")
}

// finishReport prints the report, saves it with --json, and exits 3 when a
// sample stopped early.
func finishReport(c *cli.Context, report eos.Report, pieces func(int32) string, early string) error {
	report.WriteText(c.App.Writer, pieces)
	if p := c.String("json"); p != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if report.Early() {
		return exitStatus{code: 3, err: errors.New(early + " (exit status 3)")}
	}
	return nil
}

// eosRun runs one request and collects what Decide needs.
func eosRun(c *cli.Context, eng driver.Engine, req driver.Request, log *lockedBuffer) (eos.Run, error) {
	log.Reset()
	var toks []driver.Token
	res, err := eng.Generate(c.Context, req, func(ts []driver.Token) { toks = append(toks, ts...) })
	if err != nil {
		return eos.Run{}, err
	}
	return eos.Run{Requested: req.MaxNewTokens, IgnoreEOS: req.IgnoreEOS, MinNew: req.MinNewTokens, StopSequences: req.StopSequences,
		Prompt: req.Prompt, WatchIDs: req.WatchIDs, Tokens: toks, Result: res, Log: eos.ScanLog(log.String())}, nil
}

// controlRuns repeats a request with EOS stops on, and with min_new_tokens
// forcing the full length.
func controlRuns(c *cli.Context, eng driver.Engine, req driver.Request, log *lockedBuffer) ([]eos.Control, error) {
	var out []eos.Control
	on := req
	on.IgnoreEOS, on.MinNewTokens = false, 0
	r, err := eosRun(c, eng, on, log)
	if err != nil {
		return nil, err
	}
	ctl := eos.Control{Name: "eos-on", Generated: len(r.Tokens), Finish: r.Result.Finish.String()}
	ctl.Summary = fmt.Sprintf("with EOS stops on the model stops after %d tokens (%s)", len(r.Tokens), r.Result.Finish)
	if st := eos.Steps(r, eos.Audit{}, nil); len(st) > 0 && st[len(st)-1].PStop != nil {
		ctl.PStop = st[len(st)-1].PStop
		ctl.Summary += fmt.Sprintf(", P(stop ids) %.3g at that step", *ctl.PStop)
	}
	out = append(out, ctl)

	forced := req
	forced.MinNewTokens = req.MaxNewTokens
	if r, err = eosRun(c, eng, forced, log); err != nil {
		return nil, err
	}
	ctl = eos.Control{Name: "forced-length", Generated: len(r.Tokens), Finish: r.Result.Finish.String()}
	ctl.Summary = fmt.Sprintf("with min_new_tokens=%d the engine produces %d tokens (%s)", forced.MinNewTokens, len(r.Tokens), r.Result.Finish)
	return append(out, ctl), nil
}

func eosPrompts(c *cli.Context, maker *promptMaker, vocab int) ([]bench.Prompt, error) {
	if path := c.String("prompt-ids"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--prompt-ids: %w", err)
		}
		var ids []int32
		if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("--prompt-ids %s must hold a non-empty JSON array of token ids", path)
		}
		return []bench.Prompt{{IDs: ids, Tokens: len(ids), Hash: tokenize.HashIDs(ids), Source: "ids from " + path}}, nil
	}
	if c.Int("samples") < 1 {
		return nil, fmt.Errorf("--samples must be at least 1")
	}
	var out []bench.Prompt
	for i := range c.Int("samples") {
		p, err := maker.prompt(c.Int("prompt-tokens"), c.Uint64("seed")+uint64(i), vocab)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseStops(specs []string) ([][]int32, error) {
	var out [][]int32
	for _, s := range specs {
		var seq []int32
		for _, f := range strings.Fields(s) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("--stop %q: %q is not a token id (give ids separated by spaces)", s, f)
			}
			seq = append(seq, int32(id))
		}
		if len(seq) == 0 {
			return nil, fmt.Errorf("--stop %q is empty", s)
		}
		out = append(out, seq)
	}
	return out, nil
}

// watchIDs are the ids whose probability each step reports: the stop universe.
func watchIDs(a eos.Audit, info driver.Info) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, s := range a.Universe {
		if !seen[s.ID] && int(s.ID) < info.VocabSize {
			seen[s.ID] = true
			out = append(out, s.ID)
		}
	}
	return out
}

// pieceNamer names tokens by the audit's added tokens, else by decoding
// them with the workload's tokenizer (where it has that id).
func pieceNamer(a eos.Audit, maker *promptMaker) func(int32) string {
	names := map[int32]string{}
	for _, s := range a.Universe {
		names[s.ID] = s.Piece
	}
	return func(id int32) string {
		if n, ok := names[id]; ok && n != "" {
			return n
		}
		return maker.piece(id)
	}
}

func tokenIDs(toks []driver.Token) []int32 {
	out := make([]int32, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

func writeSteps(f *os.File, sample int, steps []eos.Step) error {
	enc := json.NewEncoder(f)
	for _, s := range steps {
		if err := enc.Encode(struct {
			Sample int `json:"sample"`
			eos.Step
		}{sample, s}); err != nil {
			return fmt.Errorf("--steps: %w", err)
		}
	}
	return f.Sync()
}

func limitNote(r driver.Result) string {
	if r.LimitSource == "" || r.MaxNewEffective >= r.MaxNewRequested {
		return ""
	}
	return ", limited by " + r.LimitSource
}

func compareReports(c *cli.Context, files []string) error {
	if len(files) != 2 {
		return fmt.Errorf("--compare takes exactly two reports (saved with --json), got %d", len(files))
	}
	var reps [2]eos.Report
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--compare: %w", err)
		}
		if err := json.Unmarshal(b, &reps[i]); err != nil {
			return fmt.Errorf("--compare: %s is not an eos report: %w", f, err)
		}
	}
	n := min(len(reps[0].Samples), len(reps[1].Samples))
	fmt.Fprintf(c.App.Writer, "A: %s\nB: %s\n", reps[0].Engine, reps[1].Engine)
	for i := range n {
		a, b := reps[0].Samples[i], reps[1].Samples[i]
		d := eos.Compare(a.Hash, b.Hash, a.Output, b.Output)
		fmt.Fprintf(c.App.Writer, "sample %d: %s\n  A: %s (%s)\n  B: %s (%s)\n", i, d.Summary, a.Verdict.Cause, a.Verdict.Detail, b.Verdict.Cause, b.Verdict.Detail)
	}
	return nil
}

// lockedBuffer collects the engine log; the runner writes it from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// explainRecords runs the audit and the decision tree over runs saved by
// lmdrive run: what the engine reported is all there is (no watched
// logprobs, no control runs, no prompt ids).
func explainRecords(c *cli.Context, path string) error {
	recs, err := bench.ReadRecords(path)
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	var (
		report eos.Report
		pieces func(int32) string
	)
	maker := &promptMaker{c: c}
	defer maker.Close()
	for i, r := range recs {
		if r.Status != "ok" || r.Result == nil || r.Output == nil {
			continue
		}
		if report.Engine == "" {
			audit, err := eos.RunAudit(eos.AuditInput{ModelDir: c.String("model-dir"), EngineConfig: c.String("engine-config-file"),
				EngineEOS: r.Engine.EOSIDs, EngineMaxSeq: r.Engine.MaxSeqLen, PromptTokens: r.Prompt.Tokens, MaxNew: r.Workload.MaxNew})
			if err != nil {
				return err
			}
			report = eos.Report{Engine: fmt.Sprintf("%s (%s %s)", r.Engine.Engine, r.Engine.Backend, r.Engine.Version), Model: r.Engine.Model, Audit: audit,
				Effective: fmt.Sprintf("max_new_tokens=%d (effective %d%s)  ignore_eos=%v  stop_ids=%v", r.Result.MaxNewRequested,
					r.Result.MaxNewEffective, limitNote(*r.Result), r.Result.IgnoreEOSApplied, r.Result.StopIDs)}
		}
		toks := make([]driver.Token, len(r.Output.IDs))
		for j, id := range r.Output.IDs {
			toks[j] = driver.Token{ID: id, Index: j, TimeNs: r.Result.SubmitNs + r.Output.OffsetsNs[j], Bundle: r.Output.Bundles[j],
				Logprob: driver.Logprob(math.NaN())}
		}
		run := eos.Run{Requested: r.Workload.MaxNew, IgnoreEOS: r.Workload.IgnoreEOS, Tokens: toks, Result: *r.Result}
		if pieces == nil {
			pieces = pieceNamer(report.Audit, maker)
		}
		report.Samples = append(report.Samples, eos.Sample{Index: i, Prompt: r.Prompt.Tokens, Hash: r.Prompt.Hash, Finish: r.Result.Finish.String(),
			Verdict: eos.Decide(run, report.Audit, pieces), Output: r.Output.IDs, Steps: eos.Steps(run, report.Audit, pieces)})
	}
	if len(report.Samples) == 0 {
		return fmt.Errorf("--record %s holds no successful runs to explain", path)
	}
	return finishReport(c, report, pieces, "a recorded run stopped early")
}
