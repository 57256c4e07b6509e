package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// OpenOptions says which engine to open and how to watch it.
type OpenOptions struct {
	// Engine names the engine library (liblmdrive_<Engine>.so).
	Engine string
	// Search says where its library is looked for.
	Search Search
	// Config is the engine's JSON config (EngineSettings.Config builds it).
	Config json.RawMessage
	// InProcess loads the library into this process: no crash isolation and
	// no timeouts, but no process boundary in the token path either.
	InProcess bool
	// Timeouts of the runner child (zero: the defaults); see RunnerOptions.
	LoadTimeout, PrefillTimeout, StallTimeout time.Duration
	// Log, if not nil, receives the engine's log (its stderr, in a runner).
	Log io.Writer
	// Runner starts the runner child; default: this executable with
	// "runner". Env is added to the child's environment.
	Runner []string
	Env    []string
	// Python is the interpreter of the Python engines (IsPythonEngine):
	// --python; empty: LMDRIVE_PYTHON, then python3 on PATH.
	Python string
}

// Validate refuses settings that cannot work, before anything is started.
func (o OpenOptions) Validate() error {
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"load", o.LoadTimeout}, {"prefill", o.PrefillTimeout}, {"stall", o.StallTimeout}} {
		if t.d < 0 {
			return fmt.Errorf("--%s-timeout %s is negative; give a positive duration such as 10m (0 keeps the default)", t.name, t.d)
		}
	}
	return nil
}

// Open finds the engine's library and creates the engine: in a runner child
// process (the default), or in this process when InProcess is set. The
// Info of the returned engine names the library file it came from.
func Open(ctx context.Context, o OpenOptions) (Engine, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if IsPythonEngine(o.Engine) {
		return openPython(ctx, o)
	}
	lib, err := o.Search.Locate(o.Engine)
	if err != nil {
		return nil, err
	}
	if o.InProcess {
		return openInProcess(o.Engine, lib, o.Config)
	}
	return StartRunner(ctx, RunnerOptions{
		Command: o.Runner, Env: o.Env, Engine: o.Engine, Library: lib, Config: o.Config, Log: o.Log,
		LoadTimeout: o.LoadTimeout, PrefillTimeout: o.PrefillTimeout, StallTimeout: o.StallTimeout,
	})
}

func openInProcess(name, path string, cfg json.RawMessage) (Engine, error) {
	lib, err := OpenLibrary(path)
	if err != nil {
		return nil, err
	}
	eng, err := NewNativeEngine(lib, name, string(cfg))
	if err != nil {
		lib.Close()
		return nil, err
	}
	return &ownedEngine{NativeEngine: eng, lib: lib}, nil
}

// ownedEngine closes its library after the engine.
type ownedEngine struct {
	*NativeEngine
	lib *Library
}

func (o *ownedEngine) Close() error {
	return errors.Join(o.NativeEngine.Close(), o.lib.Close())
}

// EngineSettings are the engine config keys lmdrive's flags set. The ref
// engine reads all of them, engine hf those it shares with ref; other
// engines get the model and the tensor-parallel size. Extra (a JSON object)
// is merged over the rest.
type EngineSettings struct {
	Engine    string
	Model     string
	Seed      uint64
	Device    string
	Threads   int
	TP        int
	Precision string // "" (the engine's default) or one of Precisions
	Extra     string
	// TrustRemoteCode lets a Python engine's library run code shipped in the
	// model folder (--trust-remote-code); off by default.
	TrustRemoteCode bool
}

// Precisions are the values of --precision. fp32, fp16 and bf16 set the ref
// engine's "dtype" (weights and activations); int8 and fp8 set its "weights"
// (weight-only quantization, per output channel), leaving the activations at
// the device's default dtype (fp32 on the CPU, fp16 on CUDA; "dtype" in
// --engine-config picks bf16).
var Precisions = []string{"fp32", "fp16", "bf16", "int8", "fp8"}

// Config renders the settings as the engine's JSON config.
func (s EngineSettings) Config() (json.RawMessage, error) {
	if s.TP < 1 {
		return nil, fmt.Errorf("--tp %d: the tensor-parallel size must be at least 1", s.TP)
	}
	if s.Threads < 0 {
		return nil, fmt.Errorf("--threads %d is negative (0: the engine's default)", s.Threads)
	}
	if s.TrustRemoteCode && !IsPythonEngine(s.Engine) {
		return nil, fmt.Errorf("--trust-remote-code lets a Python engine's library run code from the model folder; engine %s runs none", s.Engine)
	}
	cfg := map[string]any{"model": s.Model}
	if s.Precision != "" && s.Engine == "hf" {
		if err := hfPrecision(s.Precision, cfg); err != nil {
			return nil, err
		}
	} else if s.Precision != "" {
		if s.Engine != "ref" {
			return nil, fmt.Errorf("--precision is a setting of the ref and hf engines; %s takes its precision from the checkpoint it loads (its own keys go in --engine-config)", s.Engine)
		}
		switch s.Precision {
		case "fp32", "fp16", "bf16":
			cfg["dtype"] = s.Precision
		case "int8", "fp8":
			cfg["weights"] = s.Precision
		default:
			return nil, fmt.Errorf("--precision %q is not one of %s", s.Precision, strings.Join(Precisions, ", "))
		}
	}
	if s.Engine == "ref" {
		cfg["seed"] = s.Seed
		cfg["device"] = s.Device
		if s.Threads > 0 {
			cfg["threads"] = s.Threads
		}
		if s.TP > 1 {
			cfg["tp"] = s.TP
		}
	} else {
		cfg["tp"] = s.TP
		if IsPythonEngine(s.Engine) {
			pythonSettings(s, cfg)
		}
	}
	if s.Extra != "" {
		var m map[string]any
		err := json.Unmarshal([]byte(s.Extra), &m)
		if err == nil && m == nil {
			err = errors.New("it is null")
		}
		if err != nil {
			return nil, fmt.Errorf("--engine-config is not a JSON object: %v (example: --engine-config '{\"max_seq_len\": 4096}')", err)
		}
		for k, v := range m {
			cfg[k] = v
		}
	}
	return json.Marshal(cfg)
}
