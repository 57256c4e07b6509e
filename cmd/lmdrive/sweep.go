package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/bench/sweep"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/urfave/cli/v2"
)

func sweepCommand() *cli.Command {
	flags := append(append(libraryFlags(), telemetryFlags()...), progressFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "out", Usage: "results file (default: the plan's out, with .shard-I-of-N before .jsonl when sharded)"},
		&cli.StringFlag{Name: "shard", Usage: "run share `I/N` of the cells (0 ≤ I < N), the same share on every host"},
		&cli.BoolFlag{Name: "redo", Usage: "run every cell again, even those the results file holds in full"},
		&cli.BoolFlag{Name: "list", Usage: "list the cells (and which are done) without running anything"},
	)
	return &cli.Command{
		Name:      "sweep",
		Usage:     "run a plan: engines × models × precisions × TP × batch × prompt/gen lengths",
		ArgsUsage: "PLAN.yaml",
		Description: `Expands the plan into cells and measures each, loading a model once for all the
cells that share it. Every repeat is appended to the results file as it is
measured, a failed cell as an error row, and the sweep goes on. Run it again to
resume: cells the file already holds in full are skipped (--redo runs them again).
--shard I/N runs a deterministic share, for a scheduler such as a Slurm array
(docs/sweep.md). Ends with the digest of the plan's records.`,
		Flags:  flags,
		Action: sweepAction,
	}
}

func sweepAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("sweep takes one plan file (docs/plans/seed.yaml is an example), got %d arguments", c.NArg())
	}
	plan, err := sweep.ReadPlan(c.Args().First())
	if err != nil {
		return err
	}
	cells, err := plan.Cells()
	if err != nil {
		return err
	}
	all := len(cells)
	out := plan.Out
	if s := c.String("shard"); s != "" {
		i, n, err := sweep.ParseShard(s)
		if err != nil {
			return err
		}
		cells = sweep.Shard(cells, i, n)
		out = strings.TrimSuffix(out, ".jsonl") + fmt.Sprintf(".shard-%d-of-%d.jsonl", i, n)
	}
	if c.String("out") != "" {
		out = c.String("out")
	}
	existing, err := readIfExists(c, out)
	if err != nil {
		return err
	}
	done := sweep.Done(existing, plan.Name)
	todo := cells
	if !c.Bool("redo") {
		todo = sweep.Pending(cells, done)
	}
	if c.Bool("list") {
		for _, cell := range cells {
			mark := " "
			if done[cell.Key] {
				mark = "✓"
			}
			fmt.Fprintf(c.App.Writer, "%s %3d %s  [%s]\n", mark, cell.Index, cell.Name(), cell.Label())
		}
		fmt.Fprintf(c.App.Writer, "%d cells of %d in this share, %d done, %d to run; results in %s\n", len(cells), all, len(cells)-len(sweep.Pending(cells, done)), len(todo), out)
		return nil
	}
	if len(todo) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "every cell of this share is in %s already (--redo runs them again)\n", out)
		return writePlanDigest(c, out, plan.Name)
	}
	w, err := bench.OpenWriter(out)
	if err != nil {
		return err
	}
	defer w.Close()
	display, err := newDisplay(c)
	if err != nil {
		return err
	}
	if skipped := len(cells) - len(todo); skipped > 0 {
		fmt.Fprintf(c.App.ErrWriter, "%d of %d cells are done in %s; running the %d left\n", skipped, len(cells), out, len(todo))
	}
	runner := &sweep.Runner{
		Plan: plan, Sink: w.Write, Display: display,
		Base: bench.Setup{Open: withDisplay(libraryOptions(c), display), GPUs: c.String("gpus"), SampleInterval: c.Duration("sample-interval"),
			Telemetry: nvml.Open, Overhead: true, Tool: bench.Tool{Version: Version, Commit: Commit}},
		Open: func(ctx context.Context, s bench.Setup) (sweep.Session, error) {
			ses, err := bench.OpenSession(ctx, s)
			if err != nil {
				return nil, err
			}
			return ses, nil
		},
	}
	outcome, runErr := runner.Run(c.Context, todo)
	display.Close()
	if err := writePlanDigest(c, out, plan.Name); err != nil && runErr == nil {
		runErr = err
	}
	fmt.Fprintf(c.App.ErrWriter, "\n%d cells run, %d failed, %d skipped as done; records in %s (lmdrive report --html digest.html %s)\n",
		outcome.Ran, outcome.Failed, len(cells)-len(todo), out, out)
	if runErr != nil {
		return fmt.Errorf("sweep stopped: %w (every record written before is in %s; run the sweep again to resume)", runErr, out)
	}
	if outcome.Failed > 0 {
		return exitStatus{code: 4, err: fmt.Errorf("%d of %d cells failed; their rows in the digest say why", outcome.Failed, outcome.Ran)}
	}
	return nil
}

// readIfExists reads a results file if there is one.
func readIfExists(c *cli.Context, path string) ([]bench.Record, error) {
	if !driver.FileExists(path) {
		return nil, nil
	}
	return readResults(c, []string{path})
}

// writePlanDigest prints the digest of the plan's records in path.
func writePlanDigest(c *cli.Context, path, plan string) error {
	recs, err := readIfExists(c, path)
	if err != nil {
		return err
	}
	var mine []bench.Record
	for _, r := range recs {
		if r.Sweep != nil && r.Sweep.Plan == plan {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	fmt.Fprintln(c.App.Writer)
	return report.WriteMarkdown(c.App.Writer, report.Build(mine, report.Options{}), report.Title+": "+plan)
}
