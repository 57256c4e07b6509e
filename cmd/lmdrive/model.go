package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/driver/checkpoint"
	"github.com/urfave/cli/v2"
)

func modelCommand() *cli.Command {
	return &cli.Command{
		Name:  "model",
		Usage: "make and list random Qwen2 checkpoints",
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "write a deterministic random checkpoint in Hugging Face format (transformers loads it as Qwen2ForCausalLM)",
				Description: `Checks that the checkpoint fits in the free space first, writes it into a hidden
folder next to --out and renames it when complete (an interrupted or failed
write leaves nothing behind).

Examples:
  lmdrive model init --preset tiny --dtype bf16 --out /tmp/tiny-bf16`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "preset", Usage: "model shape (required): " + strings.Join(checkpoint.Presets(), ", ")},
					&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random weights (the ref engine's random:<preset> with this seed has the same weights)"},
					&cli.StringFlag{Name: "out", Usage: "folder to create, empty or absent (required)"},
					&cli.StringFlag{Name: "dtype", Value: "fp32", Usage: "fp32, fp16 or bf16"},
				},
				Action: func(c *cli.Context) error {
					// Checked here rather than by the flag parser, which
					// buries the one missing flag under the whole help page.
					if c.String("preset") == "" || c.String("out") == "" {
						return fmt.Errorf("model init needs --preset and --out, e.g. lmdrive model init --preset tiny --out /tmp/tiny (presets: %s)",
							strings.Join(checkpoint.Presets(), ", "))
					}
					p, err := checkpoint.LookupPreset(c.String("preset"))
					if err != nil {
						return err
					}
					o := checkpoint.Options{Seed: c.Uint64("seed"), Dtype: c.String("dtype")}
					if size := checkpoint.SizeOf(p, o.Dtype); size >= progressFrom {
						o.Progress = newWriteProgress(c.App.ErrWriter, c.String("out")).update
					}
					if err := checkpoint.WriteContext(c.Context, c.String("out"), p, o); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %s: preset %s, seed %d, %s, %.3g parameters\n",
						c.String("out"), p.Name, c.Uint64("seed"), c.String("dtype"), float64(p.Parameters()))
					return nil
				},
			},
			{
				Name:  "presets",
				Usage: "list the model shapes random:<preset> and model init know",
				Action: func(c *cli.Context) error {
					w := c.App.Writer
					fmt.Fprintf(w, "%-14s %8s %7s %7s %6s %6s %4s %6s %9s\n", "preset", "vocab", "hidden", "inter", "layers", "heads", "kv", "tied", "params")
					for _, name := range checkpoint.Presets() {
						p, _ := checkpoint.LookupPreset(name)
						fmt.Fprintf(w, "%-14s %8d %7d %7d %6d %6d %4d %6t %8.3gB\n", p.Name, p.Vocab, p.Hidden, p.Intermediate,
							p.Layers, p.Heads, p.KVHeads, p.Tied, float64(p.Parameters())/1e9)
					}
					return nil
				},
			},
		},
	}
}

// progressFrom is the checkpoint size from which model init reports its
// progress: smaller ones are written in seconds.
const progressFrom = 1_000_000_000

// writeProgress prints one line per 5% written, with the rate and the time
// left: plain lines, so a log file or CI output shows them as well as a
// terminal does.
type writeProgress struct {
	w     io.Writer
	what  string
	start time.Time
	next  int // next percentage to report
}

func newWriteProgress(w io.Writer, what string) *writeProgress {
	return &writeProgress{w: w, what: what, start: time.Now(), next: 5}
}

func (p *writeProgress) update(written, total int64) {
	pct := int(100 * written / max(total, 1))
	if pct < p.next {
		return
	}
	p.next = pct/5*5 + 5
	secs := time.Since(p.start).Seconds()
	rate := float64(written) / max(secs, 1e-3)
	left := time.Duration(float64(total-written)/max(rate, 1)) * time.Second
	fmt.Fprintf(p.w, "writing %s: %3d%% (%s of %s), %s/s, %s left\n", p.what, pct,
		checkpoint.HumanBytes(written), checkpoint.HumanBytes(total), checkpoint.HumanBytes(int64(rate)), left.Round(time.Second))
}
