// Package doctor checks whether a host has what the chosen engines need:
// free memory and disk, the NVIDIA driver (libcuda), the GPUs and their
// settings, NVML, NCCL, the engine libraries with their ABI versions, the
// Python packages of the Python engines, and the tokenizer. Every check says
// what it found, whether the chosen engines need it, and how to fix it.
//
// The probes of the real host are behind Host, so every decision here is
// tested with fakes; System returns the probes `lmdrive doctor` uses.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
)

// Schema names the JSON form of a Report.
const Schema = "lmdrive.doctor/v1"

// Status is the outcome of one check.
type Status string

const (
	// StatusOK: present and working.
	StatusOK Status = "ok"
	// StatusWarn: present and working, but set up in a way that makes runs
	// slower or measurements noisier (persistence mode off, clocks
	// throttled, no peer-to-peer access), or a soft limit is near.
	StatusWarn Status = "warn"
	// StatusMissing: absent or not working.
	StatusMissing Status = "missing"
)

// Check is one line of the doctor's report.
type Check struct {
	// ID is stable across releases: scripts may match on it (memory, disk,
	// libcuda, gpus, nvml, nccl, gpu.<i>, gpu.<i>.persistence,
	// gpu.<i>.clocks, link.<a>-<b>, engine.<name>, engine.ref.cuda, python,
	// python.<module>, tokenizer).
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Required is true when a chosen engine needs this; a required check
	// that is missing makes the report not ready.
	Required bool     `json:"required"`
	NeededBy []string `json:"needed_by,omitempty"`
	Detail   string   `json:"detail"`
	Version  string   `json:"version,omitempty"`
	// ABI is the engine ABI version a library implements (engine.* only).
	ABI string `json:"abi,omitempty"`
	Fix string `json:"fix,omitempty"`
}

// Blocking reports whether this check keeps the chosen engines from running.
func (c Check) Blocking() bool { return c.Required && c.Status == StatusMissing }

// Tool identifies the lmdrive binary that wrote a report.
type Tool struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date,omitempty"`
}

// Report is everything `lmdrive doctor` prints.
type Report struct {
	Schema  string   `json:"schema"`
	Tool    Tool     `json:"lmdrive"`
	Engines []string `json:"engines"`
	Device  string   `json:"device"`
	TP      int      `json:"tp"`
	// Ready is true when no required check is missing.
	Ready bool `json:"ready"`
	// Missing lists the IDs of the required checks that are missing.
	Missing []string `json:"missing"`
	Checks  []Check  `json:"checks"`
}

// Options choose the engines to check for and the limits.
type Options struct {
	// Engines to check for (see Engines); empty means ref. "all" stands for
	// every engine.
	Engines []string
	// Device is where ref and hf run: cpu or cuda. Other GPU engines always
	// need the GPU.
	Device string
	// TP is the tensor-parallel size: that many GPUs, and NCCL above 1.
	TP int
	// Python is the interpreter flag (empty: LMDRIVE_PYTHON, then python3).
	Python string
	// DiskPath is the folder whose file system must have MinFreeDisk free
	// (where results and checkpoints go).
	DiskPath      string
	MinFreeDisk   uint64
	MinFreeMemory uint64
	Tool          Tool
}

// Defaults for the limits: what a CPU run of the reference engine needs with
// room to spare. GPU runs of large checkpoints need far more; raise them.
const (
	DefaultMinFreeDisk   = 1 << 30
	DefaultMinFreeMemory = 1 << 30
)

// Run checks the host through h for the engines in o.
func Run(ctx context.Context, o Options, h Host) (Report, error) {
	o, err := normalize(o)
	if err != nil {
		return Report{}, err
	}
	reqs := requirementsOf(o)
	var cs checks
	cs.host(o, h)
	cs.cuda(o, h)
	cs.engines(o, h)
	cs.python(ctx, o, h)
	cs.tokenizer(h)

	r := Report{Schema: Schema, Tool: o.Tool, Engines: o.Engines, Device: o.Device, TP: o.TP, Missing: []string{}}
	for _, c := range cs {
		c.NeededBy = reqs.neededBy(c.ID)
		c.Required = len(c.NeededBy) > 0
		if c.Blocking() {
			r.Missing = append(r.Missing, c.ID)
		}
		r.Checks = append(r.Checks, c)
	}
	r.Ready = len(r.Missing) == 0
	return r, nil
}

// NotReadyError is Run's verdict as an error: which required items are
// missing, for the exit status of `lmdrive doctor`.
func (r Report) NotReadyError() error {
	if r.Ready {
		return nil
	}
	return fmt.Errorf("not ready for %s: missing %s (each check has its fix)", strings.Join(r.Engines, ", "), strings.Join(r.Missing, ", "))
}

func normalize(o Options) (Options, error) {
	if len(o.Engines) == 0 {
		o.Engines = []string{"ref"}
	}
	var engines []string
	for _, e := range o.Engines {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case e == "all":
			engines = append(engines, Engines()...)
		case !slices.Contains(Engines(), e):
			return o, fmt.Errorf("unknown engine %q: choose from %s (or all)", e, strings.Join(Engines(), ", "))
		default:
			engines = append(engines, e)
		}
	}
	slices.Sort(engines)
	o.Engines = slices.Compact(engines)
	if len(o.Engines) == 0 {
		return o, fmt.Errorf("no engine named: choose from %s (or all)", strings.Join(Engines(), ", "))
	}
	if o.Device == "" {
		o.Device = "cpu"
	}
	if o.Device != "cpu" && o.Device != "cuda" {
		return o, fmt.Errorf("unknown device %q: want cpu or cuda", o.Device)
	}
	if o.TP == 0 {
		o.TP = 1
	}
	if o.TP < 1 {
		return o, fmt.Errorf("tensor-parallel size %d: want 1 or more", o.TP)
	}
	if o.DiskPath == "" {
		o.DiskPath = "."
	}
	return o, nil
}

// checks collects the report's lines in order.
type checks []Check

func (cs *checks) add(c Check) { *cs = append(*cs, c) }

func bytesText(n uint64) string { return humanize.IBytes(n) }
