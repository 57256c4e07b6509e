package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/lmdrive/lmdrive/driver"
	"github.com/urfave/cli/v2"
)

// knownEngines are the native engines lmdrive looks for.
var knownEngines = []string{"ref", "trtllm", "turbomind"}

func enginesCommand() *cli.Command {
	return &cli.Command{
		Name:  "engines",
		Usage: "list the engine libraries found, with their backend and ABI versions, and the Python engines' libraries",
		Flags: []cli.Flag{libPathFlag(), &cli.StringFlag{Name: "python", EnvVars: []string{"LMDRIVE_PYTHON"},
			Usage: "Python interpreter of the Python engines (default: python3 on PATH)"}, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			search := driver.DefaultSearch(c.String("lib-path"))
			rows := make([]driver.LibraryReport, 0, len(knownEngines))
			for _, name := range knownEngines {
				rows = append(rows, driver.Inspect(name, search))
			}
			for _, name := range driver.PythonEngines() {
				rows = append(rows, driver.InspectPython(name, c.String("python")))
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENGINE\tSTATUS\tABI\tBACKEND\tLIBRARY")
			for _, r := range rows {
				status, abi := "ok", r.ABI
				if r.Error != "" {
					status = r.Error
				}
				if abi == "" {
					abi = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Engine, status, abi, dash(r.Backend), dash(r.Library))
			}
			return tw.Flush()
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
