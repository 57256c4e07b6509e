package main

import (
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/importer"
	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/urfave/cli/v2"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "turn another tool's JSON results into records, marked imported, for one digest",
		ArgsUsage: "FILE...",
		Description: `Reads results of vllm bench latency (--output-json, or the .pytorch.json beside
it), vllm bench serve (--save-result) or trtllm-bench (--report_json,
--request_json) and appends them to --out as records marked imported, with the
tool's own metric definitions (docs/import.md). The flags fill in what a file
does not say: vLLM's latency JSON holds only latencies.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: strings.Join(importer.Tools, " or ")},
			&cli.StringFlag{Name: "out", Value: "results/imported.jsonl", Usage: "JSON Lines file to append the records to"},
			&cli.StringFlag{Name: "label", Usage: "Engine / Config text of the rows (default: the tool and its settings)"},
			&cli.StringFlag{Name: "model", Usage: "model name (default: what the file says)"},
			&cli.StringFlag{Name: "precision", Usage: "precision of the run (default: what the file says)"},
			&cli.IntFlag{Name: "prompt-tokens", Usage: "prompt length, where the file does not say it"},
			&cli.IntFlag{Name: "max-new", Usage: "output length asked for, where the file does not say it"},
			&cli.IntFlag{Name: "batch", Usage: "batch size, where the file does not say it"},
			&cli.IntFlag{Name: "tp", Usage: "tensor-parallel size, where the file does not say it"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("import needs at least one results file of %s", strings.Join(importer.Tools, " or "))
			}
			o := importer.Options{Label: c.String("label"), Model: c.String("model"), Precision: c.String("precision"),
				PromptTokens: c.Int("prompt-tokens"), MaxNew: c.Int("max-new"), Batch: c.Int("batch"), TP: c.Int("tp")}
			var recs []bench.Record
			for _, path := range c.Args().Slice() {
				rs, err := importer.Read(c.String("from"), path, o)
				if err != nil {
					return err
				}
				recs = append(recs, rs...)
			}
			w, err := bench.OpenWriter(c.String("out"))
			if err != nil {
				return err
			}
			defer w.Close()
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					return err
				}
			}
			if err := (report.Reporter{W: c.App.Writer}).Run(recs); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "\n%d imported records appended to %s\n", len(recs), c.String("out"))
			return nil
		},
	}
}
