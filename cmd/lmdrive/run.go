package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	var flags []cli.Flag
	for _, f := range append(append(engineFlags(), modelFlags()...), promptFlags(2048)...) {
		if f.Names()[0] != "prompt-tokens" {
			flags = append(flags, f)
		}
	}
	flags = append(flags,
		&cli.StringFlag{Name: "prompt-tokens", Value: "2048", Usage: "prompt length in tokens; a comma list (10000,20000) runs each"},
		&cli.StringFlag{Name: "max-new", Value: "256", Usage: "tokens to generate at most; a comma list (800,1000) runs each with every prompt length"},
		&cli.BoolFlag{Name: "ignore-eos", Usage: "ask the engine not to stop at EOS"},
		&cli.IntFlag{Name: "warmup", Value: 1, Usage: "unrecorded runs first"},
		&cli.IntFlag{Name: "repeats", Value: 3, Usage: "measured runs"},
		&cli.StringFlag{Name: "out", Value: "results/lmdrive.jsonl", Usage: "JSON Lines file to append records to"},
		&cli.StringFlag{Name: "label", Usage: "Engine / Config text of the report row (default: engine, backend, model)"},
	)
	flags = append(append(append(flags, telemetryFlags()...), progressFlags()...), loadFlags()...)
	return &cli.Command{
		Name:  "run",
		Usage: "benchmark one engine on one workload (or a few) and append the results",
		Description: `Loads the engine in a runner child process, hands it the prompt as token IDs,
runs --warmup unrecorded and --repeats measured generations, prints a row shaped
like the benchmark digest and appends one JSON Lines record per measured repeat
to --out (see docs/results.md). Comma lists in --prompt-tokens and --max-new run
every combination on the one loaded engine, llama-bench style; lmdrive sweep runs
whole matrices.

With a load mode each repeat sends many requests: --batch N together,
--concurrency C in a closed loop, or --request-rate R in an open loop; every
request is recorded, then the run's summary (throughput, TTFT / ITL / E2E
percentiles, goodput), and a table row per load level is printed
(docs/measurement.md).

Examples:
  lmdrive run --model random:tiny --prompt-tokens 512 --max-new 64 --ignore-eos --repeats 2 --out /tmp/r.jsonl
  lmdrive run --prompt-source ids --prompt-tokens 1000 --max-new 16 --warmup 0 --repeats 1 --out /tmp/ids.jsonl
  lmdrive run --model random:tiny --prompt-tokens 256 --max-new 32 --ignore-eos --batch 4 --repeats 1 --out /tmp/batch.jsonl`,
		Flags:  flags,
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("run takes no arguments, got %q (flags go before them?)", c.Args().Slice())
	}
	prompts, err := intList(c.String("prompt-tokens"), "--prompt-tokens")
	if err != nil {
		return err
	}
	gens, err := intList(c.String("max-new"), "--max-new")
	if err != nil {
		return err
	}
	switch {
	case c.Int("repeats") < 1:
		return fmt.Errorf("--repeats must be at least 1")
	case c.Int("warmup") < 0:
		return fmt.Errorf("--warmup must not be negative")
	case slices.Max(prompts) > prompt.MaxTokens:
		return fmt.Errorf("--prompt-tokens %d: give 1 to %d", slices.Max(prompts), prompt.MaxTokens)
	case c.Duration("sample-interval") <= 0:
		return fmt.Errorf("--sample-interval %s: give a positive duration such as 100ms", c.Duration("sample-interval"))
	}
	open, err := openOptions(c)
	if err != nil {
		return err
	}
	load, err := readLoad(c)
	if err != nil {
		return err
	}
	out, err := bench.OpenWriter(c.String("out"))
	if err != nil {
		return err
	}
	defer out.Close()
	// A cut-off last line left by an earlier run is reported before loading.
	warned := warnSetAside(c.App.ErrWriter, out, 0)
	display, err := newDisplay(c)
	if err != nil {
		return err
	}
	defer display.Close()

	ses, err := bench.OpenSession(c.Context, bench.Setup{
		Open: withDisplay(open, display), Model: c.String("model"), Prompts: promptOptions(c),
		// The longest prompt and generation are checked against the model
		// before it loads.
		PromptTokens: slices.Max(prompts), MaxNew: slices.Max(gens),
		GPUs: c.String("gpus"), SampleInterval: c.Duration("sample-interval"), Telemetry: nvml.Open,
		Overhead: true, Tool: bench.Tool{Version: Version, Commit: Commit}, Log: display.Log(), Progress: display,
	})
	if err != nil {
		return err
	}
	defer ses.Close()
	label := c.String("label")
	if label == "" {
		label = bench.DefaultLabel(open.Engine, c.String("model"), ses.Info(), c.Bool("ignore-eos"))
	}
	var all []bench.Record
	var runErr error
	for _, tokens := range prompts {
		var prompt bench.Prompt
		var loadPrompts []bench.Prompt
		if load != nil {
			loadPrompts, err = ses.LoadPrompts(tokens, c.Uint64("seed"), *load)
		} else {
			prompt, err = ses.Prompt(tokens, c.Uint64("seed"))
		}
		if err != nil {
			runErr = err
			break
		}
		for _, maxNew := range gens {
			if len(prompts)*len(gens) > 1 && display.Log() != nil {
				fmt.Fprintf(display.Log(), "workload %s->%s\n", report.Kilo(tokens), report.Kilo(maxNew))
			}
			w := bench.Workload{MaxNew: maxNew, IgnoreEOS: c.Bool("ignore-eos"), Warmup: c.Int("warmup"), Repeats: c.Int("repeats"), Load: load}
			var recs []bench.Record
			if load != nil {
				recs, err = ses.RunLoad(c.Context, label, w, loadPrompts, out.Write)
			} else {
				recs, err = ses.Run(c.Context, label, w, prompt, out.Write)
			}
			all = append(all, recs...)
			if err != nil {
				runErr = err
				break
			}
		}
		if runErr != nil {
			break
		}
	}
	display.Close()
	if err := (report.Reporter{W: c.App.Writer}).Run(all); err != nil {
		return err
	}
	if len(all) > 0 {
		fmt.Fprintf(c.App.Writer, "\n%d records appended to %s\n", len(all), c.String("out"))
	}
	warnSetAside(c.App.ErrWriter, out, warned)
	if runErr != nil {
		return fmt.Errorf("%w\n(every record written before the failure is in %s)", runErr, c.String("out"))
	}
	return nil
}

// warnSetAside prints the cut-off lines the writer set aside after the
// first skip ones, and returns how many it has set aside in all.
func warnSetAside(w io.Writer, out *bench.Writer, skip int) int {
	cuts := out.SetAside()
	for _, cut := range cuts[skip:] {
		fmt.Fprintf(w, "warning: %s\n", cut)
	}
	return len(cuts)
}

// intList reads a comma list of positive integers: "10000,20000".
func intList(s, flag string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s must be at least 1: %q is not (give a number or a comma list such as 10000,20000)", flag, part)
		}
		out = append(out, n)
	}
	return out, nil
}
