package doctor

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize"
)

// System is the real host: /proc/meminfo, statfs, the CUDA driver, NVML,
// the engine libraries Search finds, and a Python interpreter.
type System struct {
	Search driver.Search
	// PythonTimeout bounds the Python probe (importing vllm or
	// tensorrt_llm can take a minute on a cold disk).
	PythonTimeout time.Duration
}

// NewSystem returns the real host, finding engine libraries through search.
func NewSystem(search driver.Search) System {
	return System{Search: search, PythonTimeout: 3 * time.Minute}
}

var _ Host = System{}

// Memory reads MemAvailable and MemTotal from /proc/meminfo.
func (System) Memory() (available, total uint64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	return parseMeminfo(f)
}

func parseMeminfo(f *os.File) (available, total uint64, err error) {
	var haveAvail, haveTotal bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "MemAvailable":
			available, haveAvail = kb*1024, true
		case "MemTotal":
			total, haveTotal = kb*1024, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if !haveAvail || !haveTotal {
		return 0, 0, fmt.Errorf("%s has no MemAvailable or MemTotal line (Linux 3.14 or later has both)", f.Name())
	}
	return available, total, nil
}

// FreeDisk is statfs's blocks available to unprivileged users.
func (System) FreeDisk(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space under %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Libraries probes libcuda and NCCL by soname, as engines load them.
func (System) Libraries() []cuda.LibraryProbe { return cuda.ProbeLibraries() }

// CountGPUs asks the CUDA driver API.
func (System) CountGPUs() (int, error) { return cuda.CountDevices() }

// OpenTelemetry opens NVML (an error that says so in a build without cgo).
func (System) OpenTelemetry() (cuda.Telemetry, error) { return nvml.Open() }

// InspectEngine finds the engine's library through Search and asks it to
// describe itself.
func (s System) InspectEngine(name string) driver.LibraryReport {
	return driver.Inspect(name, s.Search)
}

// pluginHeader is the start of lmdref_cuda_api (native/ref/cuda/plugin_abi.h).
type pluginHeader struct {
	StructSize uint32
	Version    uint32
}

// InspectRefCUDA loads the plugin beside refLibrary with the flags
// liblmdrive_ref.so uses and reads its version. The plugin is never
// unloaded: it carries the CUDA runtime, which may keep threads and exit
// handlers inside it.
func (System) InspectRefCUDA(refLibrary string) (PluginInfo, error) {
	path := pluginPath(refLibrary)
	if !driver.FileExists(path) {
		return PluginInfo{}, fmt.Errorf("this build has no CUDA backend: %s does not exist", path)
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return PluginInfo{}, fmt.Errorf("%s does not load: %w", path, err)
	}
	sym, err := purego.Dlsym(h, "lmdref_cuda_get_api")
	if err != nil {
		return PluginInfo{}, fmt.Errorf("%s is not the ref engine's CUDA plugin: %w", path, err)
	}
	var getAPI func() unsafe.Pointer
	purego.RegisterFunc(&getAPI, sym)
	api := (*pluginHeader)(getAPI())
	if api == nil {
		return PluginInfo{}, fmt.Errorf("%s returned no API table", path)
	}
	needed, err := neededLibraries(path)
	if err != nil {
		return PluginInfo{}, err
	}
	nccl := slices.ContainsFunc(needed, func(lib string) bool { return strings.HasPrefix(lib, "libnccl.so") })
	return PluginInfo{Path: path, Version: int(api.Version), NCCL: nccl}, nil
}

// neededLibraries lists an ELF file's NEEDED entries.
func neededLibraries(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("read the libraries %s needs: %w", path, err)
	}
	return libs, nil
}

// FindPython resolves the interpreter: flag, else LMDRIVE_PYTHON, else
// python3 on PATH (the order the Python worker uses).
func (System) FindPython(flag string) (string, error) {
	name, from := flag, "--python"
	if name == "" {
		name, from = os.Getenv("LMDRIVE_PYTHON"), "LMDRIVE_PYTHON"
	}
	if name == "" {
		p, err := exec.LookPath("python3")
		if err != nil {
			return "", errors.New("no Python interpreter: python3 is not on PATH")
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s %s is not an executable interpreter: %w", from, name, err)
	}
	return p, nil
}

//go:embed probe.py
var probeScript string

// ProbePython runs probe.py in the interpreter.
func (s System) ProbePython(ctx context.Context, interpreter string, modules []ModuleQuery) (PythonInfo, error) {
	if s.PythonTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.PythonTimeout)
		defer cancel()
	}
	args := []string{"-c", probeScript}
	for _, m := range modules {
		mode := "look:"
		if m.Import {
			mode = "import:"
		}
		args = append(args, mode+m.Name)
	}
	cmd := exec.CommandContext(ctx, interpreter, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return PythonInfo{}, fmt.Errorf("%s did not answer within %s (importing %s)", interpreter, s.PythonTimeout, queryNames(modules))
		}
		return PythonInfo{}, fmt.Errorf("%s failed: %v: %s", interpreter, err, lastLine(stderr.String()))
	}
	var info PythonInfo
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return PythonInfo{}, fmt.Errorf("%s answered something other than the probe's JSON (%v): %q", interpreter, err, lastLine(stdout.String()))
	}
	return info, nil
}

func queryNames(modules []ModuleQuery) string {
	var names []string
	for _, m := range modules {
		if m.Import {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ", ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Tokenizer opens the built-in tokenizer with the default backend.
func (System) Tokenizer() (string, error) {
	tok, err := tokenize.Open("", tokenize.BackendAuto)
	if err != nil {
		return "", err
	}
	defer tok.Close()
	info := tok.Info()
	return fmt.Sprintf("%s, %s backend (built in: %s)", info.Source, info.Backend, strings.Join(tokenize.Backends(), ", ")), nil
}
