package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "benchmark one engine on one workload and append the results",
		Description: `Loads the engine in a runner child process, hands it the prompt as token IDs,
runs --warmup unrecorded and --repeats measured generations, prints a row shaped
like the benchmark digest and appends one JSON Lines record per measured repeat
to --out (see docs/results.md).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "engine", Value: "ref", Usage: "engine library to load (ref, trtllm, turbomind), or a Python engine (hf, vllm, lmdeploy, trtllm-py)"},
			&cli.StringFlag{Name: "model", Value: "random:tiny", Usage: "checkpoint folder, or random:<preset> for the ref engine (lmdrive model presets)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of random weights and of the prompt"},
			&cli.IntFlag{Name: "prompt-tokens", Value: 2048, Usage: "prompt length in tokens"},
			&cli.IntFlag{Name: "max-new", Value: 256, Usage: "tokens to generate at most"},
			&cli.BoolFlag{Name: "ignore-eos", Usage: "ask the engine not to stop at EOS"},
			&cli.IntFlag{Name: "warmup", Value: 1, Usage: "unrecorded runs first"},
			&cli.IntFlag{Name: "repeats", Value: 3, Usage: "measured runs"},
			&cli.StringFlag{Name: "out", Value: "results/lmdrive.jsonl", Usage: "JSON Lines file to append records to"},
			&cli.StringFlag{Name: "label", Usage: "Engine / Config text of the report row (default: engine, backend, model)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where the ref or hf engine runs: cpu or cuda (hf also auto: device_map=\"auto\")"},
			&cli.IntFlag{Name: "tp", Value: 1, Usage: "tensor-parallel size"},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads of the ref engine (default: all cores)"},
			&cli.StringFlag{Name: "engine-config", Usage: "extra engine config keys as a JSON object, merged over the flags"},
			libPathFlag(),
			pythonFlag(),
			&cli.StringFlag{Name: "gpus", Usage: "NVML indices of the GPUs to sample during each repeat (default: the engine's devices)"},
			&cli.DurationFlag{Name: "sample-interval", Value: cuda.DefaultSampleInterval, Usage: "GPU telemetry sampling interval"},
			&cli.BoolFlag{Name: "in-process", Usage: "load the engine into this process instead of a runner child (no crash isolation)"},
			&cli.DurationFlag{Name: "load-timeout", Value: driver.DefaultLoadTimeout, Usage: "give up on an engine that loads longer"},
			&cli.DurationFlag{Name: "prefill-timeout", Value: driver.DefaultPrefillTimeout, Usage: "give up when the first token takes longer"},
			&cli.DurationFlag{Name: "stall-timeout", Value: driver.DefaultStallTimeout, Usage: "give up when no token comes for this long"},
		}, workloadPromptFlags()...),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("run takes no arguments, got %q (flags go before them?)", c.Args().Slice())
	}
	switch {
	case c.Int("repeats") < 1:
		return fmt.Errorf("--repeats must be at least 1")
	case c.Int("warmup") < 0:
		return fmt.Errorf("--warmup must not be negative")
	case c.Int("max-new") < 1:
		return fmt.Errorf("--max-new must be at least 1")
	case c.Int("prompt-tokens") < 1:
		return fmt.Errorf("--prompt-tokens must be at least 1")
	case c.Int("tp") < 1:
		return fmt.Errorf("--tp must be at least 1")
	}
	cfg, err := engineConfig(c)
	if err != nil {
		return err
	}
	engineName := c.String("engine")
	lib := "a Python worker"
	if !driver.IsPythonEngine(engineName) {
		if lib, err = driver.DefaultSearch(c.String("lib-path")).Find(engineName, driver.FileExists); err != nil {
			return err
		}
	}
	out, err := bench.OpenWriter(c.String("out"))
	if err != nil {
		return err
	}
	defer out.Close()

	stderr := c.App.ErrWriter
	fmt.Fprintf(stderr, "loading %s from %s\n", engineName, lib)
	eng, err := openEngine(c, engineName, lib, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	info := eng.Info()
	fmt.Fprintf(stderr, "loaded %s %s (%s, %s) in %.2f s\n", info.Backend, info.Version, info.Model, info.Dtype, float64(info.LoadNs)/1e9)

	prompts := &promptMaker{c: c}
	defer prompts.Close()
	prompt, err := prompts.prompt(c.Int("prompt-tokens"), c.Uint64("seed"), info.VocabSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "prompt: %d tokens, %s (%s)\n", prompt.Tokens, prompt.Source, prompt.Hash)
	label := c.String("label")
	if label == "" {
		label = fmt.Sprintf("%s (%s, %s", engineName, info.Backend, c.String("model"))
		if info.TPSize > 1 {
			label += fmt.Sprintf(", tp=%d", info.TPSize)
		}
		if c.Bool("ignore-eos") {
			label += ", ignore_eos"
		}
		label += ")"
	}
	plan := bench.Plan{
		Label: label,
		Tool:  bench.Tool{Version: Version, Commit: Commit},
		Workload: bench.Workload{
			Model: c.String("model"), EngineConfig: cfg, MaxNew: c.Int("max-new"), IgnoreEOS: c.Bool("ignore-eos"),
			Warmup: c.Int("warmup"), Repeats: c.Int("repeats"),
		},
		Prompt: prompt,
	}
	repro, err := bench.CollectRepro(c.String("model"))
	if err != nil {
		return err
	}
	plan.Repro = &repro
	observer, closeTelemetry, err := setupTelemetry(c.String("gpus"), c.Duration("sample-interval"), info, &repro,
		func(msg string) { fmt.Fprintln(stderr, msg) })
	if err != nil {
		return err
	}
	defer closeTelemetry()
	plan.Observer = observer
	if oh, err := measureOverhead(c, engineName); err != nil {
		fmt.Fprintf(stderr, "harness overhead not measured: %v\n", err)
	} else {
		plan.Overhead = &oh
		fmt.Fprintf(stderr, "harness overhead: %.2f µs per engine step, %.2f µs per token delivered (%s, %d tokens, zero-compute engine)\n",
			oh.EngineStepUs, oh.DeliveryUs, oh.Path, oh.Tokens)
	}
	recs, runErr := bench.Run(c.Context, eng, plan, out.Write, stderr)
	if len(recs) > 0 {
		w := c.App.Writer
		fmt.Fprint(w, "\n"+bench.DigestHeader+bench.DigestRow(recs)+"\n")
		bench.WriteSummary(w, recs)
		fmt.Fprintf(w, "\n%d records appended to %s\n", len(recs), c.String("out"))
	}
	if runErr != nil {
		return fmt.Errorf("%w\n(every record written before the failure is in %s)", runErr, c.String("out"))
	}
	return nil
}

// measureOverhead runs the ref engine's zero-compute calibration mode through
// the same path (runner or in-process) as the benchmark, so every result
// carries what lmdrive itself costs per token. A Python engine measures its
// own adapter's zero-compute mode in its worker instead.
func measureOverhead(c *cli.Context, engineName string) (bench.Overhead, error) {
	if driver.IsPythonEngine(engineName) {
		eng, err := openEngine(c, engineName, "", json.RawMessage(`{"calibrate":true}`))
		if err != nil {
			return bench.Overhead{}, err
		}
		defer eng.Close()
		return bench.MeasureOverhead(c.Context, eng, 20000, "python worker ("+engineName+" adapter)")
	}
	lib, err := driver.DefaultSearch(c.String("lib-path")).Find("ref", driver.FileExists)
	if err != nil {
		return bench.Overhead{}, err
	}
	cfg := json.RawMessage(`{"model":"random:tiny","calibrate":true}`)
	eng, err := openEngine(c, "ref", lib, cfg)
	if err != nil {
		return bench.Overhead{}, err
	}
	defer eng.Close()
	path := "runner"
	if c.Bool("in-process") {
		path = "in-process"
	}
	return bench.MeasureOverhead(c.Context, eng, 20000, path)
}

// engineConfig builds the engine's JSON config from the flags, then merges
// --engine-config over it.
func engineConfig(c *cli.Context) (json.RawMessage, error) {
	cfg := map[string]any{"model": c.String("model")}
	if name := c.String("engine"); driver.IsPythonEngine(name) {
		pythonEngineConfig(c, name, cfg)
	} else if name == "ref" {
		cfg["seed"] = c.Uint64("seed")
		cfg["device"] = c.String("device")
		if c.Int("threads") > 0 {
			cfg["threads"] = c.Int("threads")
		}
		if c.Int("tp") > 1 {
			cfg["tp"] = c.Int("tp")
		}
	} else {
		cfg["tp"] = c.Int("tp")
	}
	if extra := c.String("engine-config"); extra != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(extra), &m); err != nil {
			return nil, fmt.Errorf("--engine-config is not a JSON object: %v (example: --engine-config '{\"max_seq_len\": 4096}')", err)
		}
		for k, v := range m {
			cfg[k] = v
		}
	}
	return json.Marshal(cfg)
}

func openEngine(c *cli.Context, name, lib string, cfg json.RawMessage) (driver.Engine, error) {
	if driver.IsPythonEngine(name) {
		return startPython(c, name, cfg, engineLog(c))
	}
	if c.Bool("in-process") {
		l, err := driver.OpenLibrary(lib)
		if err != nil {
			return nil, err
		}
		eng, err := driver.NewNativeEngine(l, name, string(cfg))
		if err != nil {
			l.Close()
			return nil, err
		}
		return &ownedEngine{NativeEngine: eng, lib: l}, nil
	}
	return driver.StartRunner(c.Context, driver.RunnerOptions{
		Engine: name, Library: lib, Config: cfg, Log: engineLog(c),
		LoadTimeout: c.Duration("load-timeout"), PrefillTimeout: c.Duration("prefill-timeout"), StallTimeout: c.Duration("stall-timeout"),
	})
}

// engineLog shows the engine's stderr unless LMDRIVE_QUIET_ENGINE is set.
// It returns a plain nil interface when quiet: a typed nil pointer would
// look like a writer and fail on the first log line.
func engineLog(c *cli.Context) io.Writer {
	if os.Getenv("LMDRIVE_QUIET_ENGINE") != "" {
		return nil
	}
	return &prefixWriter{w: c.App.ErrWriter, prefix: "  engine| "}
}

// ownedEngine closes its library after the engine.
type ownedEngine struct {
	*driver.NativeEngine
	lib *driver.Library
}

func (o *ownedEngine) Close() error {
	return errors.Join(o.NativeEngine.Close(), o.lib.Close())
}

// prefixWriter prefixes each line, so engine logs stand apart.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var sb strings.Builder
	for _, ch := range string(b) {
		if !p.midLine {
			sb.WriteString(p.prefix)
		}
		sb.WriteRune(ch)
		p.midLine = ch != '\n'
	}
	_, err := p.w.Write([]byte(sb.String()))
	return len(b), err
}
