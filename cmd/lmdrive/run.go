package main

import (
	"fmt"
	"io"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	flags := append(append(engineFlags(), modelFlags()...), promptFlags(2048)...)
	flags = append(flags,
		&cli.IntFlag{Name: "max-new", Value: 256, Usage: "tokens to generate at most"},
		&cli.BoolFlag{Name: "ignore-eos", Usage: "ask the engine not to stop at EOS"},
		&cli.IntFlag{Name: "warmup", Value: 1, Usage: "unrecorded runs first"},
		&cli.IntFlag{Name: "repeats", Value: 3, Usage: "measured runs"},
		&cli.StringFlag{Name: "out", Value: "results/lmdrive.jsonl", Usage: "JSON Lines file to append records to"},
		&cli.StringFlag{Name: "label", Usage: "Engine / Config text of the report row (default: engine, backend, model)"},
		&cli.StringFlag{Name: "gpus", Usage: "NVML indices of the GPUs to sample during each repeat (default: the engine's devices)"},
		&cli.DurationFlag{Name: "sample-interval", Value: cuda.DefaultSampleInterval, Usage: "GPU telemetry sampling interval"},
	)
	return &cli.Command{
		Name:  "run",
		Usage: "benchmark one engine on one workload and append the results",
		Description: `Loads the engine in a runner child process, hands it the prompt as token IDs,
runs --warmup unrecorded and --repeats measured generations, prints a row shaped
like the benchmark digest and appends one JSON Lines record per measured repeat
to --out (see docs/results.md).

Examples:
  lmdrive run --model random:tiny --prompt-tokens 512 --max-new 64 --ignore-eos --repeats 2 --out /tmp/r.jsonl
  lmdrive run --prompt-source ids --prompt-tokens 1000 --max-new 16 --warmup 0 --repeats 1 --out /tmp/ids.jsonl`,
		Flags:  flags,
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
	case c.Int("prompt-tokens") < 1 || c.Int("prompt-tokens") > prompt.MaxTokens:
		return fmt.Errorf("--prompt-tokens %d: give 1 to %d", c.Int("prompt-tokens"), prompt.MaxTokens)
	case c.Duration("sample-interval") <= 0:
		return fmt.Errorf("--sample-interval %s: give a positive duration such as 100ms", c.Duration("sample-interval"))
	}
	open, err := openOptions(c)
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

	stderr := c.App.ErrWriter
	ses, err := bench.OpenSession(c.Context, bench.Setup{
		Open: open, Model: c.String("model"), Prompts: promptOptions(c), PromptTokens: c.Int("prompt-tokens"), MaxNew: c.Int("max-new"),
		GPUs: c.String("gpus"), SampleInterval: c.Duration("sample-interval"), Telemetry: nvml.Open,
		Overhead: true, Tool: bench.Tool{Version: Version, Commit: Commit}, Log: stderr,
	})
	if err != nil {
		return err
	}
	defer ses.Close()
	prompt, err := ses.Prompt(c.Int("prompt-tokens"), c.Uint64("seed"))
	if err != nil {
		return err
	}
	label := c.String("label")
	if label == "" {
		label = bench.DefaultLabel(open.Engine, c.String("model"), ses.Info(), c.Bool("ignore-eos"))
	}
	w := bench.Workload{MaxNew: c.Int("max-new"), IgnoreEOS: c.Bool("ignore-eos"), Warmup: c.Int("warmup"), Repeats: c.Int("repeats")}
	recs, runErr := ses.Run(c.Context, label, w, prompt, out.Write)
	if err := (bench.Reporter{W: c.App.Writer}).Run(recs); err != nil {
		return err
	}
	if len(recs) > 0 {
		fmt.Fprintf(c.App.Writer, "\n%d records appended to %s\n", len(recs), c.String("out"))
	}
	warnSetAside(stderr, out, warned)
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
