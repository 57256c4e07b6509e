package doctor

import (
	"context"
	"errors"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// fakeHost answers the doctor's questions from its fields. The zero value is
// a CPU machine with nothing installed.
type fakeHost struct {
	memAvail, memTotal uint64
	memErr             error
	diskFree           uint64
	libs               []cuda.LibraryProbe
	gpuCount           int
	gpuErr             error
	telemetry          *fakeTelemetry // nil: NVML does not load
	engines            map[string]driver.LibraryReport
	plugin             *PluginInfo
	python             string // interpreter path; empty: none found
	pythonInfo         PythonInfo
	pythonErr          error
	tokErr             error

	queries []ModuleQuery // what ProbePython was asked
}

func (f *fakeHost) Memory() (uint64, uint64, error) { return f.memAvail, f.memTotal, f.memErr }
func (f *fakeHost) FreeDisk(string) (uint64, error) { return f.diskFree, nil }
func (f *fakeHost) Libraries() []cuda.LibraryProbe  { return f.libs }
func (f *fakeHost) CountGPUs() (int, error)         { return f.gpuCount, f.gpuErr }

func (f *fakeHost) OpenTelemetry() (cuda.Telemetry, error) {
	if f.telemetry == nil {
		return nil, cuda.Unavailable("cannot load NVML (libnvidia-ml.so.1): not found\nNVML comes with the NVIDIA driver.", nil)
	}
	return f.telemetry, nil
}

func (f *fakeHost) InspectEngine(name string) driver.LibraryReport {
	if r, ok := f.engines[name]; ok {
		return r
	}
	return driver.LibraryReport{Engine: name, Error: "not found"}
}

func (f *fakeHost) InspectRefCUDA(ref string) (PluginInfo, error) {
	if f.plugin == nil {
		return PluginInfo{}, errors.New("this build has no CUDA backend: " + pluginPath(ref) + " does not exist")
	}
	return *f.plugin, nil
}

func (f *fakeHost) FindPython(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if f.python == "" {
		return "", errors.New("no Python interpreter: python3 is not on PATH")
	}
	return f.python, nil
}

func (f *fakeHost) ProbePython(_ context.Context, _ string, q []ModuleQuery) (PythonInfo, error) {
	f.queries = q
	return f.pythonInfo, f.pythonErr
}

func (f *fakeHost) Tokenizer() (string, error) {
	if f.tokErr != nil {
		return "", f.tokErr
	}
	return "Qwen2.5 (built in), go backend", nil
}

// cpuHost is a CPU machine with the ref library and Python 3.11 with
// nothing of the Python engines installed.
func cpuHost() *fakeHost {
	return &fakeHost{
		memAvail: 8 << 30, memTotal: 16 << 30, diskFree: 100 << 30,
		libs: []cuda.LibraryProbe{
			{Name: "CUDA driver", File: "libcuda.so.1", Error: "libcuda.so.1: cannot open shared object file", Fix: "install the NVIDIA driver"},
			{Name: "NCCL", File: "libnccl.so.2", Error: "libnccl.so.2: cannot open shared object file", Fix: "install NCCL (libnccl2)"},
		},
		engines: map[string]driver.LibraryReport{
			"ref": {Engine: "ref", Library: "/opt/lmdrive/lib/lmdrive/liblmdrive_ref.so", ABI: "1.0", Backend: "ref-cpu", Version: "lmdrive-ref 0.1.0"},
		},
		python: "/usr/bin/python3",
		pythonInfo: PythonInfo{Version: "3.11.2", Executable: "/usr/bin/python3", Modules: map[string]ModuleInfo{
			"torch": {Error: "not installed"}, "transformers": {Error: "not installed"}, "vllm": {Error: "not installed"},
			"lmdeploy": {Error: "not installed"}, "tensorrt_llm": {Error: "not installed"},
		}},
	}
}

// gpuHost is a host with two H100s on NVSwitches, NCCL, the ref library
// with its CUDA plugin, and torch and transformers importable.
func gpuHost() *fakeHost {
	h := cpuHost()
	h.libs = []cuda.LibraryProbe{
		{Name: "CUDA driver", File: "libcuda.so.1", Version: "13.0"},
		{Name: "NCCL", File: "libnccl.so.2", Version: "2.27.7"},
	}
	h.gpuCount = 2
	h.telemetry = newFakeTelemetry(2)
	h.plugin = &PluginInfo{Path: "/opt/lmdrive/lib/lmdrive/liblmdrive_ref_cuda.so", Version: 2, NCCL: true}
	h.pythonInfo.Modules["torch"] = ModuleInfo{Version: "2.9.0", Imported: true, CUDA: "13.0", CUDAGPUs: 2}
	h.pythonInfo.Modules["transformers"] = ModuleInfo{Version: "4.57.1", Imported: true}
	return h
}

// fakeTelemetry is NVML as the doctor reads it: n H100s that all reach each
// other through NVSwitches with peer-to-peer access.
type fakeTelemetry struct {
	devices  []cuda.Device
	readings []cuda.Reading
	p2p      string
	closed   bool
}

func newFakeTelemetry(n int) *fakeTelemetry {
	t := &fakeTelemetry{p2p: cuda.P2POK}
	for i := range n {
		t.devices = append(t.devices, cuda.Device{
			Index: i, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-0000000" + string(rune('0'+i)),
			PCIBusID: cuda.Known("00000000:0" + string(rune('1'+i)) + ":00.0"), ComputeCapability: cuda.Known("9.0"),
			MemoryTotalBytes: cuda.Known(uint64(80 << 30)),
			SMClock:          cuda.Clocks{MaxMHz: cuda.Known(uint32(1980)), ApplicationMHz: cuda.Known(uint32(1755))},
			MemoryClock:      cuda.Clocks{MaxMHz: cuda.Known(uint32(2619))},
			PowerLimitMW:     cuda.Known(uint32(700000)), PowerDefaultLimitMW: cuda.Known(uint32(700000)), PowerEnforcedLimitMW: cuda.Known(uint32(700000)),
			MIG:         cuda.Mode{Current: cuda.Known(false)},
			Persistence: cuda.Known(true),
		})
		t.readings = append(t.readings, cuda.Reading{SMClockMHz: cuda.Known(uint32(345)), Throttle: cuda.Known(cuda.ThrottleGPUIdle)})
	}
	return t
}

func (t *fakeTelemetry) System() (cuda.System, error) {
	return cuda.System{DriverVersion: cuda.Known("580.82.07"), CUDADriverVersion: cuda.Known("13.0"), NVMLVersion: cuda.Known("13.580.82.07")}, nil
}
func (t *fakeTelemetry) DeviceCount() int { return len(t.devices) }
func (t *fakeTelemetry) Device(i int) (cuda.Device, error) {
	if err := cuda.CheckIndex(i, len(t.devices)); err != nil {
		return cuda.Device{}, err
	}
	return t.devices[i], nil
}
func (t *fakeTelemetry) NVLinks(i int) ([]cuda.NVLink, error) {
	links := make([]cuda.NVLink, 18)
	for l := range links {
		links[l] = cuda.NVLink{Link: l, RemoteBusID: "00000000:a0:00.0", Remote: cuda.RemoteNVSwitch}
	}
	return links, nil
}
func (t *fakeTelemetry) Path(a, b int) (cuda.Path, error) {
	return cuda.Path{Level: cuda.Known(cuda.LevelSystem), P2PRead: cuda.Known(t.p2p), P2PWrite: cuda.Known(t.p2p), P2PNVLink: cuda.Known(t.p2p)}, nil
}
func (t *fakeTelemetry) Read(i int) (cuda.Reading, error) { return t.readings[i], nil }
func (t *fakeTelemetry) ReadEnergy(int) (cuda.Maybe[uint64], error) {
	return cuda.Maybe[uint64]{}, nil
}
func (t *fakeTelemetry) PowerHistory(int, uint64) ([]cuda.DriverPowerSample, error) {
	return nil, nil
}
func (t *fakeTelemetry) Close() error { t.closed = true; return nil }

// byID indexes a report's checks.
func byID(r Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range r.Checks {
		m[c.ID] = c
	}
	return m
}
