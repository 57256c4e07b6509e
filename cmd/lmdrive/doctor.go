package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/urfave/cli/v2"
)

// doctorCheck is one line of `lmdrive doctor`.
type doctorCheck struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check this host: driver, CUDA, NVML, NCCL, GPUs and their links, engine libraries, tokenizer",
		Flags: []cli.Flag{libPathFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			checks := doctorChecks(driver.DefaultSearch(c.String("lib-path")))
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(checks)
			}
			for _, ch := range checks {
				mark := "ok  "
				if !ch.OK {
					mark = "MISS"
				}
				fmt.Fprintf(c.App.Writer, "[%s] %-22s %s\n", mark, ch.What, ch.Detail)
				if ch.Fix != "" {
					fmt.Fprintf(c.App.Writer, "       %-22s fix: %s\n", "", ch.Fix)
				}
			}
			return nil
		},
	}
}

func doctorChecks(search driver.Search) []doctorCheck {
	var out []doctorCheck
	for _, lib := range cuda.ProbeLibraries() {
		ch := doctorCheck{What: lib.Name, OK: lib.Error == "", Detail: lib.File + " " + lib.Version, Fix: lib.Fix}
		if !ch.OK {
			ch.Detail = lib.Error
		}
		out = append(out, ch)
	}
	t, err := nvml.Open()
	if err != nil {
		msg, fix, _ := strings.Cut(err.Error(), "\n")
		out = append(out, doctorCheck{What: "NVML / GPUs", Detail: msg, Fix: strings.TrimSpace(fix)})
	} else {
		defer t.Close()
		inv, err := cuda.ReadInventory(t)
		if err != nil {
			out = append(out, doctorCheck{What: "NVML / GPUs", Detail: err.Error()})
		} else {
			out = append(out, doctorCheck{What: "NVIDIA driver", OK: true,
				Detail: fmt.Sprintf("%s, CUDA %s", inv.System.DriverVersion, inv.System.CUDADriverVersion)})
			for _, d := range inv.Devices {
				out = append(out, doctorCheck{What: fmt.Sprintf("GPU %d", d.Index), OK: true, Detail: fmt.Sprintf("%s %s", d.Name, d.UUID)})
			}
			for _, p := range inv.Pairs {
				out = append(out, doctorCheck{What: fmt.Sprintf("GPU %d ↔ GPU %d", p.A, p.B), OK: true, Detail: fmt.Sprintf("%s, P2P read %s write %s", p.Label(), p.P2PRead, p.P2PWrite)})
			}
		}
	}
	for _, name := range knownEngines {
		r := driver.Inspect(name, search)
		ch := doctorCheck{What: "engine " + name, OK: r.Error == "", Detail: fmt.Sprintf("%s %s, ABI %s (%s)", r.Backend, r.Version, r.ABI, r.Library)}
		if !ch.OK {
			ch.Detail = r.Error
			ch.Fix = "build it with `make native`"
			if name != "ref" {
				ch.Fix = "built only where its SDK is installed: see docs/engines.md"
			}
		}
		out = append(out, ch)
	}
	if tok, err := tokenize.Open("", tokenize.BackendAuto); err != nil {
		out = append(out, doctorCheck{What: "tokenizer", Detail: err.Error()})
	} else {
		info := tok.Info()
		out = append(out, doctorCheck{What: "tokenizer", OK: true, Detail: fmt.Sprintf("%s, %s backend (available: %s)", info.Source, info.Backend, strings.Join(tokenize.Backends(), ", "))})
		tok.Close()
	}
	return out
}
