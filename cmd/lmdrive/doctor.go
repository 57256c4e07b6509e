package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/driver/doctor"
)

// exitNotReady is lmdrive doctor's exit status when a chosen engine lacks
// something (1 stays "the doctor itself failed", bad flags for example).
const exitNotReady = 2

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check that this host has what the chosen engines need, with a fix for each problem",
		Description: "Checks free memory and disk, the NVIDIA driver, the GPUs (persistence mode, clocks,\n" +
			"power limits, links), NVML, NCCL, the engine libraries and their ABI versions, the\n" +
			"Python packages of the Python engines and the tokenizer. Exits 0 when everything the\n" +
			"engines named by --engines need is there, 2 when something is missing. See docs/doctor.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "engines", Value: "ref", Usage: "engines to check for, comma-separated: " + strings.Join(doctor.Engines(), ", ") + ", or all"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where ref and hf run: cpu or cuda (the other engines always need GPUs)"},
			&cli.IntFlag{Name: "tp", Value: 1, Usage: "tensor-parallel size: needs that many GPUs, and NCCL above 1"},
			libPathFlag(),
			&cli.StringFlag{Name: "python", Usage: "Python interpreter of the Python engines (default: LMDRIVE_PYTHON, then python3)"},
			&cli.StringFlag{Name: "disk-path", Value: ".", Usage: "folder whose file system must have --min-free-disk free"},
			&cli.StringFlag{Name: "min-free-disk", Value: humanize.IBytes(doctor.DefaultMinFreeDisk), Usage: "free disk needed under --disk-path"},
			&cli.StringFlag{Name: "min-free-memory", Value: humanize.IBytes(doctor.DefaultMinFreeMemory), Usage: "available memory needed"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON (docs/doctor.md describes it)"},
		},
		Action: doctorAction,
	}
}

func doctorAction(c *cli.Context) error {
	minDisk, err := humanize.ParseBytes(c.String("min-free-disk"))
	if err != nil {
		return fmt.Errorf("--min-free-disk %q: want a size such as 10GiB: %w", c.String("min-free-disk"), err)
	}
	minMem, err := humanize.ParseBytes(c.String("min-free-memory"))
	if err != nil {
		return fmt.Errorf("--min-free-memory %q: want a size such as 4GiB: %w", c.String("min-free-memory"), err)
	}
	opts := doctor.Options{
		Engines:       strings.Split(c.String("engines"), ","),
		Device:        c.String("device"),
		TP:            c.Int("tp"),
		Python:        c.String("python"),
		DiskPath:      c.String("disk-path"),
		MinFreeDisk:   minDisk,
		MinFreeMemory: minMem,
		Tool:          doctor.Tool{Version: Version, Commit: Commit, Date: BuildDate},
	}
	r, err := doctor.Run(c.Context, opts, doctor.NewSystem(driver.DefaultSearch(c.String("lib-path"))))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = doctor.WriteText(c.App.Writer, r)
	}
	if err != nil {
		return err
	}
	if err := r.NotReadyError(); err != nil {
		return exitStatus{code: exitNotReady, err: err}
	}
	return nil
}
