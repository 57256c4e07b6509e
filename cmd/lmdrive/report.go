package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/bench/report/htmlpage"
	"github.com/lmdrive/lmdrive/bench/report/plots"
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
			&cli.StringFlag{Name: "html", Usage: "also write one self-contained page with the tables and plots to `FILE`"},
			&cli.StringFlag{Name: "plots", Usage: "also write each plot as an SVG file into `DIR`"},
			&cli.StringFlag{Name: "title", Value: report.Title, Usage: "title of the markdown digest and the HTML page"},
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
	opts := report.Options{Merge: c.Bool("merge")}
	if c.String("format") == report.FormatMarkdown {
		d := report.Build(kept, opts)
		if len(d.Tables) > 0 || len(bench.LoadPoints(kept)) == 0 {
			if err := report.WriteMarkdown(c.App.Writer, d, c.String("title")); err != nil {
				return err
			}
		}
		if err := report.WriteLoadTable(c.App.Writer, kept); err != nil { // load runs: a row per level
			return err
		}
	} else if err := (report.Reporter{W: c.App.Writer, Options: opts}).Write(c.String("format"), kept); err != nil {
		return err
	}
	if c.String("html") == "" && c.String("plots") == "" {
		return nil
	}
	return writeFigures(c, report.Build(kept, opts))
}

// writeFigures draws the plots and writes them as SVG files, the HTML
// page, or both.
func writeFigures(c *cli.Context, d report.Digest) error {
	figs, err := plots.Draw(d)
	if err != nil {
		return err
	}
	if dir := c.String("plots"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--plots: %w", err)
		}
		for _, f := range figs.Figures {
			if err := os.WriteFile(filepath.Join(dir, f.Name+".svg"), f.SVG, 0o644); err != nil {
				return fmt.Errorf("--plots: %w", err)
			}
		}
		fmt.Fprintf(c.App.ErrWriter, "%d plots written to %s\n", len(figs.Figures), dir)
	}
	if path := c.String("html"); path != "" {
		var b bytes.Buffer
		meta := htmlpage.Meta{Title: c.String("title"), Generated: fmt.Sprintf("lmdrive %s (%s), %s", Version, Commit, time.Now().UTC().Format("2006-01-02 15:04 UTC")),
			Sources: c.Args().Slice(), Notes: figs.Skipped}
		if err := htmlpage.Write(&b, d, figs, meta); err != nil {
			return err
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("--html: %w", err)
			}
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		fmt.Fprintf(c.App.ErrWriter, "page with %d tables and %d plots written to %s\n", len(d.Tables), len(figs.Figures), path)
	}
	return nil
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
