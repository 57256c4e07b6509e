package doctor

import (
	"context"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// Host is what the doctor asks the machine. System answers for the real
// host; tests answer with fakes.
type Host interface {
	// Memory returns the memory available to new processes and the total.
	Memory() (available, total uint64, err error)
	// FreeDisk returns the bytes an unprivileged user may still write on
	// the file system that holds path.
	FreeDisk(path string) (uint64, error)
	// Libraries probes the CUDA driver API (libcuda.so.1) and NCCL.
	Libraries() []cuda.LibraryProbe
	// CountGPUs asks the CUDA driver how many GPUs this process can use.
	CountGPUs() (int, error)
	// OpenTelemetry opens NVML; the caller closes it.
	OpenTelemetry() (cuda.Telemetry, error)
	// InspectEngine finds and describes a native engine's library.
	InspectEngine(name string) driver.LibraryReport
	// InspectRefCUDA loads the ref engine's CUDA plugin that sits beside
	// refLibrary, the way liblmdrive_ref.so does.
	InspectRefCUDA(refLibrary string) (PluginInfo, error)
	// FindPython resolves the interpreter: flag, else LMDRIVE_PYTHON, else
	// python3 on PATH.
	FindPython(flag string) (string, error)
	// ProbePython asks the interpreter for its version and for each module:
	// imported (Import) or only looked up.
	ProbePython(ctx context.Context, interpreter string, modules []ModuleQuery) (PythonInfo, error)
	// Tokenizer opens the built-in tokenizer and describes it.
	Tokenizer() (string, error)
}

// PluginInfo describes the ref engine's CUDA plugin.
type PluginInfo struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	// NCCL is true when the plugin links NCCL: without it, tensor
	// parallelism is off.
	NCCL bool `json:"nccl"`
}

// ModuleQuery is one Python module to probe. Import: import it (proves it
// loads, and can take seconds); otherwise only look it up, which is cheap.
type ModuleQuery struct {
	Name   string
	Import bool
}

// PythonInfo is what the interpreter said.
type PythonInfo struct {
	Version    string                `json:"version"`
	Executable string                `json:"executable"`
	Modules    map[string]ModuleInfo `json:"modules"`
}

// ModuleInfo is one module's answer. Error is empty when it was found (and,
// if asked, imported).
type ModuleInfo struct {
	Version  string `json:"version,omitempty"`
	Imported bool   `json:"imported,omitempty"`
	Error    string `json:"error,omitempty"`
	// For torch, when imported: the CUDA version it was built for (empty:
	// a CPU-only build) and how many GPUs it sees.
	CUDA     string `json:"cuda,omitempty"`
	CUDAGPUs int    `json:"cuda_gpus,omitempty"`
}
