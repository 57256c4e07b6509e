package doctor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

func run(t *testing.T, h Host, o Options) Report {
	t.Helper()
	if o.MinFreeDisk == 0 {
		o.MinFreeDisk = DefaultMinFreeDisk
	}
	if o.MinFreeMemory == 0 {
		o.MinFreeMemory = DefaultMinFreeMemory
	}
	r, err := Run(context.Background(), o, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCPUHostIsReadyForRefOnly(t *testing.T) {
	h := cpuHost()
	r := run(t, h, Options{})
	if !r.Ready || len(r.Missing) != 0 || !slices.Equal(r.Engines, []string{"ref"}) || r.Device != "cpu" || r.TP != 1 {
		t.Fatalf("report: %+v", r)
	}
	c := byID(r)
	if ref := c["engine.ref"]; ref.Status != StatusOK || !ref.Required || ref.ABI != "1.0" || !slices.Equal(ref.NeededBy, []string{"ref"}) {
		t.Fatalf("engine.ref: %+v", ref)
	}
	// The GPU stack is absent but not needed.
	for _, id := range []string{"libcuda", "gpus", "nvml", "nccl", "engine.ref.cuda", "python.torch"} {
		if c[id].Status != StatusMissing || c[id].Required {
			t.Errorf("%s: %+v", id, c[id])
		}
	}
	wantFix := "NVML comes with the NVIDIA driver"
	if !cgoBuild {
		wantFix = "built without cgo"
	}
	if !strings.Contains(c["nvml"].Fix, wantFix) || strings.Contains(c["nvml"].Detail, "\n") {
		t.Errorf("nvml: want the detail's first line and a fix saying %q: %+v", wantFix, c["nvml"])
	}
	// Nothing a chosen engine needs is imported: only looked up.
	if len(h.queries) != len(allPythonModules()) {
		t.Fatalf("queries %+v", h.queries)
	}
	for _, q := range h.queries {
		if q.Import {
			t.Errorf("imported without need: %+v", q)
		}
	}
}

func TestCPUHostIsNotReadyForGPUEngines(t *testing.T) {
	h := cpuHost()
	r := run(t, h, Options{Engines: []string{"ref", "hf"}, Device: "cuda"})
	want := []string{"libcuda", "gpus", "engine.ref.cuda", "python.torch", "python.transformers"}
	if r.Ready || !slices.Equal(r.Missing, want) {
		t.Fatalf("missing %v, want %v", r.Missing, want)
	}
	c := byID(r)
	if !slices.Equal(c["libcuda"].NeededBy, []string{"hf", "ref"}) || c["libcuda"].Fix == "" {
		t.Fatalf("libcuda: %+v", c["libcuda"])
	}
	if c["python.transformers"].Fix != "pip install transformers into /usr/bin/python3's environment" {
		t.Fatalf("fix: %q", c["python.transformers"].Fix)
	}
	// The modules of the chosen engine are imported, the others looked up.
	for _, q := range h.queries {
		if q.Import != (q.Name == "torch" || q.Name == "transformers") {
			t.Errorf("query %+v", q)
		}
	}
	if err := r.NotReadyError(); err == nil || !strings.Contains(err.Error(), "not ready for hf, ref: missing libcuda, gpus") {
		t.Fatalf("verdict: %v", err)
	}
}

func TestGPUHost(t *testing.T) {
	h := gpuHost()
	r := run(t, h, Options{Engines: []string{"ref", "hf"}, Device: "cuda", TP: 2})
	if !r.Ready {
		t.Fatalf("missing %v", r.Missing)
	}
	c := byID(r)
	for _, id := range []string{"libcuda", "gpus", "nvml", "nccl", "gpu.0", "gpu.1", "gpu.0.persistence", "gpu.1.clocks", "link.0-1", "engine.ref.cuda", "python.torch"} {
		if c[id].Status != StatusOK {
			t.Errorf("%s: %+v", id, c[id])
		}
	}
	// Engines find NCCL through their own RUNPATH: the soname probe informs.
	if c["nccl"].Required || c["nccl"].Version != "2.27.7" {
		t.Errorf("nccl: %+v", c["nccl"])
	}
	if got := c["engine.ref.cuda"].Detail; !strings.Contains(got, "with NCCL (tensor parallel)") {
		t.Errorf("plugin: %q", got)
	}
	if got := c["link.0-1"].Detail; got != "NV18 through NVSwitches, P2P read OK, write OK" {
		t.Errorf("link: %q", got)
	}
	if got := c["python.torch"].Detail; got != "2.9.0 imported, built for CUDA 13.0, sees 2 GPU(s)" {
		t.Errorf("torch: %q", got)
	}
	if !h.telemetry.closed {
		t.Error("NVML left open")
	}
}

func TestGPUHostWarnings(t *testing.T) {
	h := gpuHost()
	h.telemetry.devices[1].Persistence = cuda.Known(false)
	h.telemetry.devices[1].PowerEnforcedLimitMW = cuda.Known(uint32(500000))
	h.telemetry.readings[0].Throttle = cuda.Known(cuda.ThrottleHWSlowdown | cuda.ThrottleSWPowerCap)
	h.telemetry.devices[0].MIG.Current = cuda.Known(true)
	h.telemetry.p2p = cuda.P2PChipsetNotSupported
	r := run(t, h, Options{Engines: []string{"trtllm"}, TP: 2, MinFreeMemory: 16 << 30})
	c := byID(r)
	// Warnings never block; a missing library and too little memory do.
	if !slices.Equal(r.Missing, []string{"memory", "engine.trtllm"}) {
		t.Fatalf("missing %v", r.Missing)
	}
	for id, fix := range map[string]string{
		"gpu.1.persistence": "nvidia-smi -i 1 -pm 1",
		"gpu.1.clocks":      "nvidia-smi -i 1 -pl 700",
		"gpu.0.clocks":      "sw_power_cap,hw_slowdown",
		"gpu.0":             "nvidia-smi -i 0 -mig 0",
		"link.0-1":          "nvidia-smi topo -p2p rw",
	} {
		if c[id].Status != StatusWarn || !strings.Contains(c[id].Fix, fix) {
			t.Errorf("%s: want a warning whose fix says %q: %+v", id, fix, c[id])
		}
	}
	if c["gpu.1.clocks"].Status != StatusWarn || c["gpu.0.clocks"].Detail == "" {
		t.Errorf("clocks: %+v", c["gpu.0.clocks"])
	}
	// Without tensor parallelism, peer-to-peer access does not matter.
	r = run(t, h, Options{Engines: []string{"trtllm"}})
	if got := byID(r)["link.0-1"]; got.Status != StatusOK {
		t.Errorf("link at --tp 1: %+v", got)
	}
}

func TestTooFewGPUs(t *testing.T) {
	h := gpuHost()
	h.gpuCount = 1
	r := run(t, h, Options{Engines: []string{"ref"}, Device: "cuda", TP: 2})
	g := byID(r)["gpus"]
	if g.Status != StatusMissing || !strings.Contains(g.Detail, "--tp 2 needs 2") || !slices.Equal(r.Missing, []string{"gpus"}) {
		t.Fatalf("gpus: %+v, missing %v", g, r.Missing)
	}
	// The CPU engine needs no GPU, whatever --tp says.
	if r := run(t, h, Options{Engines: []string{"ref"}, TP: 2}); !r.Ready {
		t.Fatalf("ref on cpu: missing %v", r.Missing)
	}
	h.gpuErr = errors.New("cuInit failed: CUDA driver version is insufficient for CUDA runtime version (CUresult 35)")
	if g := byID(run(t, h, Options{Engines: []string{"vllm"}}))["gpus"]; g.Status != StatusMissing || !strings.Contains(g.Fix, "nvidia-smi") {
		t.Fatalf("gpus: %+v", g)
	}
}

func TestPythonProblems(t *testing.T) {
	h := cpuHost()
	h.python = ""
	r := run(t, h, Options{Engines: []string{"hf"}})
	c := byID(r)
	if c["python"].Status != StatusMissing || !strings.Contains(c["python"].Fix, "LMDRIVE_PYTHON") || c["python.torch"].Detail != "no working Python interpreter" {
		t.Fatalf("no interpreter: %+v %+v", c["python"], c["python.torch"])
	}

	h = cpuHost()
	h.pythonInfo.Version = "3.8.10"
	if c := byID(run(t, h, Options{Engines: []string{"hf"}}))["python"]; c.Status != StatusMissing || !strings.Contains(c.Detail, "older than 3.9") {
		t.Fatalf("old python: %+v", c)
	}

	// hf on the CPU takes a CPU-only PyTorch; on cuda it does not.
	h = cpuHost()
	h.pythonInfo.Modules["torch"] = ModuleInfo{Version: "2.9.0+cpu", Imported: true}
	h.pythonInfo.Modules["transformers"] = ModuleInfo{Version: "4.57.1", Imported: true}
	if r := run(t, h, Options{Engines: []string{"hf"}}); !r.Ready {
		t.Fatalf("hf on cpu: missing %v", r.Missing)
	}
	r = run(t, h, Options{Engines: []string{"hf"}, Device: "cuda"})
	if c := byID(r)["python.torch"]; c.Status != StatusMissing || !strings.Contains(c.Detail, "CPU-only build") || !strings.Contains(c.Fix, "CUDA build of PyTorch") {
		t.Fatalf("CPU-only torch for cuda: %+v", c)
	}

	h = cpuHost()
	h.pythonErr = errors.New("/usr/bin/python3 did not answer within 3m0s (importing vllm)")
	if c := byID(run(t, h, Options{Engines: []string{"vllm"}}))["python.vllm"]; c.Status != StatusMissing || !c.Required {
		t.Fatalf("probe failure: %+v", c)
	}
}

func TestOptions(t *testing.T) {
	r := run(t, gpuHost(), Options{Engines: []string{"all"}})
	if !slices.Equal(r.Engines, []string{"hf", "lmdeploy", "ref", "trtllm", "trtllm-py", "turbomind", "vllm"}) {
		t.Fatalf("all: %v", r.Engines)
	}
	r = run(t, cpuHost(), Options{Engines: []string{" ref", "ref", ""}})
	if !slices.Equal(r.Engines, []string{"ref"}) {
		t.Fatalf("engines: %v", r.Engines)
	}
	for _, o := range []Options{
		{Engines: []string{"reff"}},
		{Engines: []string{""}},
		{Device: "tpu"},
		{TP: -1},
	} {
		if _, err := Run(context.Background(), o, cpuHost()); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestMemoryAndDisk(t *testing.T) {
	h := cpuHost()
	h.memAvail, h.diskFree = 512<<20, 10<<20
	r := run(t, h, Options{})
	c := byID(r)
	if c["memory"].Status != StatusMissing || c["memory"].Detail != "512 MiB available of 16 GiB, below the limit of 1.0 GiB" {
		t.Fatalf("memory: %+v", c["memory"])
	}
	if c["disk"].Status != StatusMissing || !strings.Contains(c["disk"].Fix, "--min-free-disk") {
		t.Fatalf("disk: %+v", c["disk"])
	}
	h.memErr = errors.New("read memory size: open /proc/meminfo: no such file or directory")
	if c := byID(run(t, h, Options{}))["memory"]; !strings.Contains(c.Fix, "mount -t proc") {
		t.Fatalf("no /proc: %+v", c)
	}
}

func TestEngineLibraryProblems(t *testing.T) {
	h := cpuHost()
	h.engines["ref"] = driver.LibraryReport{Engine: "ref", Library: "/opt/lmdrive/lib/lmdrive/liblmdrive_ref.so",
		Error: "libgomp.so.1: cannot open shared object file: No such file or directory"}
	r := run(t, h, Options{Device: "cuda"})
	c := byID(r)
	if c["engine.ref"].Status != StatusMissing || !strings.Contains(c["engine.ref"].Fix, "install what the message names") {
		t.Fatalf("engine.ref: %+v", c["engine.ref"])
	}
	if c["engine.ref.cuda"].Detail != "needs a working liblmdrive_ref.so first" {
		t.Fatalf("engine.ref.cuda: %+v", c["engine.ref.cuda"])
	}
	delete(h.engines, "ref")
	if c := byID(run(t, h, Options{}))["engine.ref"]; c.Detail != "no liblmdrive_ref.so found" || !strings.Contains(c.Fix, "LMDRIVE_LIB_PATH") {
		t.Fatalf("no ref: %+v", c)
	}
}

func TestWriteText(t *testing.T) {
	h := cpuHost()
	r := run(t, h, Options{Engines: []string{"ref", "vllm"}, Tool: Tool{Version: "v1.2.3", Commit: "abc1234"}})
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"lmdrive v1.2.3 (abc1234): checking for ref, vllm on cpu, tensor-parallel size 1\n",
		"ok       memory               8.0 GiB available of 16 GiB\n",
		"MISSING  libcuda              libcuda.so.1: cannot open shared object file [needed by vllm]\n",
		"                              fix: install the NVIDIA driver",
		"absent   engine.turbomind     no liblmdrive_turbomind.so found\n",
		"NOT ready for ref, vllm: missing libcuda, gpus, python.torch, python.vllm\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// Fixes of absent items no chosen engine needs stay out of the text.
	if strings.Contains(out, "docs/engines.md") {
		t.Errorf("fix of an absent, unneeded engine printed:\n%s", out)
	}
}

func TestParseMeminfo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(p, []byte("MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20480000 kB\n"), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	avail, total, err := parseMeminfo(f)
	if err != nil || avail != 20480000*1024 || total != 24576000*1024 {
		t.Fatalf("%d %d %v", avail, total, err)
	}
	os.WriteFile(p, []byte("MemTotal: 10 kB\n"), 0o644)
	g, _ := os.Open(p)
	defer g.Close()
	if _, _, err := parseMeminfo(g); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
		t.Fatalf("want an error naming MemAvailable: %v", err)
	}
}

func TestRefCUDAWithoutNCCL(t *testing.T) {
	h := gpuHost()
	h.plugin.NCCL = false
	r := run(t, h, Options{Engines: []string{"ref"}, Device: "cuda", TP: 2})
	c := byID(r)["engine.ref.cuda"]
	if !slices.Equal(r.Missing, []string{"engine.ref.cuda"}) || !strings.Contains(c.Detail, "built without NCCL") || !strings.Contains(c.Fix, "NCCL_ROOT") {
		t.Fatalf("missing %v: %+v", r.Missing, c)
	}
	r = run(t, h, Options{Engines: []string{"ref"}, Device: "cuda"})
	if c := byID(r)["engine.ref.cuda"]; !r.Ready || !strings.Contains(c.Detail, "without NCCL (one GPU only)") {
		t.Fatalf("at --tp 1: missing %v: %+v", r.Missing, c)
	}
}
