package main

import (
	"encoding/json"
	"fmt"

	"github.com/lmdrive/lmdrive/bench/compare"
	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/urfave/cli/v2"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "say which differences between two results files are beyond the noise (benchstat-like)",
		ArgsUsage: "OLD.jsonl NEW.jsonl",
		Description: `Pairs the runs of OLD and NEW by workload (the same label, model, precision and
prompt/gen lengths) or, with --by prompt, by identical prompt ids whatever the
engine, and prints per metric the old and new medians, the change, and "~" when a
Mann-Whitney U test cannot tell them apart at α=0.05. For greedy runs it says where
the generated token ids first part. OLD and NEW may be the same file when
--old-engine and --new-engine pick two engines out of it.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Value: compare.ByWorkload, Usage: "pair runs by workload or by prompt (identical prompt ids, across engines)"},
			&cli.StringSliceFlag{Name: "old-engine", Usage: "keep only this engine, backend or label start on the old side"},
			&cli.StringSliceFlag{Name: "new-engine", Usage: "keep only this engine, backend or label start on the new side"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("compare takes two results files, OLD and NEW (got %d)", c.NArg())
			}
			old, err := readResults(c, c.Args().Slice()[:1])
			if err != nil {
				return err
			}
			new, err := readResults(c, c.Args().Slice()[1:])
			if err != nil {
				return err
			}
			old = report.Filter{Engines: c.StringSlice("old-engine")}.Apply(old)
			new = report.Filter{Engines: c.StringSlice("new-engine")}.Apply(new)
			res, err := compare.Compare(old, new, c.String("by"))
			if err != nil {
				return err
			}
			switch c.String("format") {
			case "text":
				return compare.Write(c.App.Writer, res)
			case "json":
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return fmt.Errorf("--format %q: want text or json", c.String("format"))
		},
	}
}
