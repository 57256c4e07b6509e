package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
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
			return writeEnginesTable(c.App.Writer, rows)
		},
	}
}

// writeEnginesTable prints one row an engine with a short status, then each
// reason an engine cannot run once, naming the engines it stops (the four
// Python engines share theirs), so that a long reason does not stretch the
// table.
func writeEnginesTable(w io.Writer, rows []driver.LibraryReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tSTATUS\tABI\tBACKEND\tLIBRARY")
	var reasons []string
	stopped := map[string][]string{}
	for _, r := range rows {
		status := "ok"
		switch {
		case r.Error == "not found":
			status = r.Error
		case r.Error != "":
			status = "unavailable"
			if stopped[r.Error] == nil {
				reasons = append(reasons, r.Error)
			}
			stopped[r.Error] = append(stopped[r.Error], r.Engine)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Engine, status, dash(r.ABI), dash(r.Backend), dash(r.Library))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, why := range reasons {
		if _, err := fmt.Fprintf(w, "%s: %s\n", strings.Join(stopped[why], ", "), why); err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
