package main

import (
	"fmt"
	"strings"

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
			if err := (bench.Reporter{W: c.App.Writer}).Write(c.String("format"), recs); err != nil {
				return fmt.Errorf("%w (in %s)", err, strings.Join(c.Args().Slice(), ", "))
			}
			return nil
		},
	}
}
