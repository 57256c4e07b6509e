package driver

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The Python worker (driver/pyworker): lmdrive_worker.py and its adapter
// package. The binary carries a copy, so `go install` and a bare binary work;
// `make build` and `make dist` also lay it beside the engine libraries.
//
//go:embed pyworker/lmdrive_worker.py pyworker/lmdrive_py/*.py
var embeddedWorker embed.FS

// WorkerScript is the worker's entry file inside its folder.
const WorkerScript = "lmdrive_worker.py"

// PythonEngines lists the engines a Python worker drives, in the order
// docs/engines.md describes them.
func PythonEngines() []string { return []string{"hf", "vllm", "lmdeploy", "trtllm-py"} }

// IsPythonEngine reports whether an engine is driven by the Python worker
// rather than loaded from a shim library.
func IsPythonEngine(name string) bool { return slices.Contains(PythonEngines(), name) }

// PythonOptions says how to start a Python worker and watch it.
type PythonOptions struct {
	// Interpreter is --python; empty: LMDRIVE_PYTHON, then python3 on PATH.
	Interpreter string
	// WorkerDir is a folder holding lmdrive_worker.py; empty: LMDRIVE_PYWORKER,
	// then <executable>/../lib/lmdrive/pyworker, then the embedded copy,
	// written to a private temporary folder for the worker's lifetime.
	WorkerDir string
	// Script, if set, is started instead of lmdrive_worker.py (tests use a
	// script that adds fault-injecting engines).
	Script string
	// Engine is the engine name (hf, vllm, lmdeploy, trtllm-py) and Config its JSON config.
	Engine string
	Config []byte
	// Env is added to the worker's environment.
	Env []string
	// Limits and log, as for a runner child (zero: the runner defaults).
	Runner RunnerOptions
}

// FindPython resolves the interpreter: the flag, else LMDRIVE_PYTHON, else
// python3 on PATH. The error says how to name one.
func FindPython(flag, env string, lookPath func(string) (string, error)) (string, error) {
	name, from := flag, "--python"
	if name == "" {
		name, from = env, "LMDRIVE_PYTHON"
	}
	if name == "" {
		p, err := lookPath("python3")
		if err != nil {
			return "", errors.New("no Python interpreter: python3 is not on PATH; install Python 3.9 or later, or name one with --python or LMDRIVE_PYTHON")
		}
		return p, nil
	}
	p, err := lookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s %s: not an executable Python interpreter (%v); point it at python3 or at a virtual environment's bin/python", from, name, err)
	}
	return p, nil
}

// WorkerSearch says where the worker's folder is looked for, in order:
// LMDRIVE_PYWORKER, then <dir of executable>/../lib/lmdrive/pyworker (the
// dist layout and the build tree). Empty means: use the embedded copy.
func WorkerSearch(env, executable string) []string {
	var out []string
	if env != "" {
		out = append(out, env)
	}
	if executable != "" {
		out = append(out, filepath.Join(filepath.Dir(executable), "..", "lib", "lmdrive", "pyworker"))
	}
	return out
}

// findWorker returns the worker folder to use and a cleanup function: the
// first searched folder that holds the worker, else a private copy of the
// embedded worker.
func findWorker(dir string) (string, func(), error) {
	cands := []string{dir}
	if dir == "" {
		exe, _ := os.Executable()
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		cands = WorkerSearch(os.Getenv("LMDRIVE_PYWORKER"), exe)
	}
	for _, c := range cands {
		if FileExists(filepath.Join(c, WorkerScript)) {
			return filepath.Clean(c), func() {}, nil
		}
	}
	if dir != "" {
		return "", nil, fmt.Errorf("python worker: %s holds no %s", dir, WorkerScript)
	}
	tmp, err := WriteEmbeddedWorker("")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// WriteEmbeddedWorker writes the worker this binary carries into dir (a new
// private temporary folder when dir is empty) and returns the folder.
func WriteEmbeddedWorker(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "lmdrive-pyworker-"); err != nil {
			return "", fmt.Errorf("python worker: %w", err)
		}
	}
	err := fs.WalkDir(embeddedWorker, "pyworker", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, "pyworker"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := embeddedWorker.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		return "", fmt.Errorf("python worker: write it to %s: %w", dir, err)
	}
	return dir, nil
}

// StartPython starts a Python worker for opts.Engine and opens the engine in
// it. The worker speaks the runner protocol, so the result is a RemoteEngine
// with the same crash and hang isolation and per-phase timeouts as a runner
// child; closing it also removes a temporary copy of the worker.
func StartPython(ctx context.Context, opts PythonOptions) (Engine, error) {
	py, err := FindPython(opts.Interpreter, os.Getenv("LMDRIVE_PYTHON"), exec.LookPath)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := findWorker(opts.WorkerDir)
	if err != nil {
		return nil, err
	}
	script := opts.Script
	if script == "" {
		script = filepath.Join(dir, WorkerScript)
	}
	ro := opts.Runner
	// -u: stderr lines reach the log at once; -B: never write bytecode
	// next to the worker (a dist folder may be read-only).
	ro.Command = []string{py, "-u", "-B", script}
	ro.Env = append(append([]string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8", "LMDRIVE_PYWORKER_DIR=" + dir}, opts.Env...), ro.Env...)
	ro.Engine, ro.Library, ro.Config = opts.Engine, script, opts.Config
	// vLLM and TensorRT-LLM start worker processes of their own.
	ro.ProcessGroup = true
	eng, err := StartRunner(ctx, ro)
	if err != nil {
		cleanup()
		return nil, err
	}
	return &pythonEngine{RemoteEngine: eng, cleanup: cleanup}, nil
}

// openPython is Open for the Python engines: the worker is their runner.
func openPython(ctx context.Context, o OpenOptions) (Engine, error) {
	if o.InProcess {
		return nil, fmt.Errorf("--in-process loads engine libraries; engine %s runs in a Python worker process", o.Engine)
	}
	return StartPython(ctx, PythonOptions{Interpreter: o.Python, Engine: o.Engine, Config: o.Config, Env: o.Env,
		Runner: RunnerOptions{Log: o.Log, LoadTimeout: o.LoadTimeout, PrefillTimeout: o.PrefillTimeout, StallTimeout: o.StallTimeout}})
}

// pythonSettings adds --trust-remote-code, and the settings engine hf
// shares with the ref engine: the seed of random:<preset> weights, the
// device and CPU threads.
func pythonSettings(s EngineSettings, cfg map[string]any) {
	if s.TrustRemoteCode {
		cfg["trust_remote_code"] = true
	}
	if s.Engine != "hf" {
		return
	}
	cfg["seed"] = s.Seed
	cfg["device"] = s.Device
	if s.Threads > 0 {
		cfg["threads"] = s.Threads
	}
}

// hfPrecision maps --precision for engine hf: fp32, fp16 and bf16 are its
// dtype; int8 loads the checkpoint through bitsandbytes (LLM.int8()).
func hfPrecision(p string, cfg map[string]any) error {
	switch p {
	case "fp32", "fp16", "bf16":
		cfg["dtype"] = p
	case "int8":
		cfg["precision"] = p
	default:
		return fmt.Errorf("--precision %q: engine hf runs fp32, fp16, bf16, or int8 through bitsandbytes", p)
	}
	return nil
}

// pythonEngine is a worker whose folder may have to be removed at Close.
type pythonEngine struct {
	*RemoteEngine
	cleanup func()
}

func (p *pythonEngine) Close() error {
	err := p.RemoteEngine.Close()
	p.cleanup()
	return err
}

// pythonPackage names the distribution each Python engine needs.
func pythonPackage(engine string) string {
	switch engine {
	case "hf":
		return "transformers"
	case "trtllm-py":
		return "tensorrt_llm"
	}
	return engine
}

// InspectPython says whether a Python engine's library is installed for the
// interpreter (from its package metadata, without importing it: importing
// torch takes seconds), for `lmdrive engines`.
func InspectPython(engine, interpreter string) LibraryReport {
	r := LibraryReport{Engine: engine, ABI: "python worker"}
	py, err := FindPython(interpreter, os.Getenv("LMDRIVE_PYTHON"), exec.LookPath)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Library = py
	pkg := pythonPackage(engine)
	out, err := exec.Command(py, "-c", "import sys, importlib.metadata as m\ntry:\n print(m.version(sys.argv[1]))\nexcept Exception:\n print('')", pkg).Output()
	if err != nil {
		r.Error = fmt.Sprintf("%s does not run: %v", py, err)
		return r
	}
	r.Backend, r.Version = pkg, strings.TrimSpace(string(out))
	if r.Version == "" {
		r.Error = fmt.Sprintf("%s is not installed for %s (pip install %s, or --python)", pkg, py, pkg)
	} else {
		r.Backend += " " + r.Version
	}
	return r
}
