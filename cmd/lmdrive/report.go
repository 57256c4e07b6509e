package main

import (
	"fmt"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "turn results files into a digest table or the Go benchmark format",
		ArgsUsage: "RESULTS.jsonl...",
		Description: `Reads one or more results files (from several hosts, say) and prints one digest
row per engine and workload (--format markdown), or one Go benchmark line per
measured repeat for benchstat (--format gobench).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "markdown", Usage: "markdown or gobench"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("report needs at least one results file (lmdrive run --out writes them)")
			}
			var recs []bench.Record
			for _, path := range c.Args().Slice() {
				rs, err := bench.ReadRecords(path)
				if err != nil {
					return fmt.Errorf("read results: %w", err)
				}
				recs = append(recs, rs...)
			}
			switch c.String("format") {
			case "markdown":
				groups := bench.GroupRecords(recs)
				if len(groups) == 0 {
					return fmt.Errorf("no successful records in %v", c.Args().Slice())
				}
				fmt.Fprint(c.App.Writer, bench.DigestHeader)
				for _, g := range groups {
					fmt.Fprint(c.App.Writer, bench.DigestRow(g))
				}
				return nil
			case "gobench":
				return bench.WriteGoBench(c.App.Writer, recs)
			default:
				return fmt.Errorf("--format %q: want markdown or gobench", c.String("format"))
			}
		},
	}
}
