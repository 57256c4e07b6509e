package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/report"
	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "turn results files into the digest: tables, notes, plots, an HTML page",
		ArgsUsage: "RESULTS.jsonl...",
		Description: `Reads one or more results files (from several hosts or sweep shards, say) and
writes the digest: a table per model and precision, a row per run, notes written
from the data (docs/report.md). A damaged line is skipped with a warning naming it.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: report.FormatMarkdown, Usage: strings.Join(report.Formats, ", ")},
			&cli.BoolFlag{Name: "merge", Usage: "one row per configuration and workload instead of one per run"},
			&cli.StringSliceFlag{Name: "run", Usage: "keep runs whose id starts with `ID` (repeatable)"},
			&cli.StringSliceFlag{Name: "engine", Usage: "keep an engine, backend or label start (repeatable)"},
			&cli.StringSliceFlag{Name: "model", Usage: "keep models whose name holds `TEXT` (repeatable)"},
			&cli.StringFlag{Name: "since", Usage: "keep records from a date (2026-12-01), a time, or how long ago (36h, 7d)"},
		},
		Action: reportAction,
	}
}

func reportAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("report needs at least one results file (lmdrive run --out and lmdrive sweep write them)")
	}
	recs, err := readResults(c, c.Args().Slice())
	if err != nil {
		return err
	}
	since, err := report.ParseSince(c.String("since"), time.Now())
	if err != nil {
		return err
	}
	f := report.Filter{Runs: c.StringSlice("run"), Engines: c.StringSlice("engine"), Models: c.StringSlice("model"), Since: since}
	kept := f.Apply(recs)
	if len(kept) == 0 {
		return fmt.Errorf("none of the %d records in %s passes the filters", len(recs), strings.Join(c.Args().Slice(), ", "))
	}
	return report.Reporter{W: c.App.Writer, Options: report.Options{Merge: c.Bool("merge")}}.Write(c.String("format"), kept)
}

// readResults reads every file, skipping damaged lines with a warning.
func readResults(c *cli.Context, paths []string) ([]bench.Record, error) {
	var recs []bench.Record
	for _, path := range paths {
		rs, err := bench.ReadRecordsTolerant(path, warner(c))
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		recs = append(recs, rs...)
	}
	return recs, nil
}

// warner prints one warning line to stderr.
func warner(c *cli.Context) func(string) {
	return func(s string) { fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", s) }
}
