package doctor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// host checks free memory and disk.
func (cs *checks) host(o Options, h Host) {
	c := Check{ID: "memory", Title: "free memory"}
	if avail, total, err := h.Memory(); err != nil {
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "lmdrive reads /proc/meminfo: mount /proc (in a chroot: mount -t proc proc <root>/proc)"
	} else if avail < o.MinFreeMemory {
		c.Status = StatusMissing
		c.Detail = fmt.Sprintf("%s available of %s, below the limit of %s", bytesText(avail), bytesText(total), bytesText(o.MinFreeMemory))
		c.Fix = "stop what holds the memory, or lower the limit with --min-free-memory"
	} else {
		c.Status, c.Detail = StatusOK, fmt.Sprintf("%s available of %s", bytesText(avail), bytesText(total))
	}
	cs.add(c)

	c = Check{ID: "disk", Title: "free disk"}
	if free, err := h.FreeDisk(o.DiskPath); err != nil {
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "point --disk-path at the folder that will hold results and checkpoints"
	} else if free < o.MinFreeDisk {
		c.Status = StatusMissing
		c.Detail = fmt.Sprintf("%s free under %s, below the limit of %s", bytesText(free), o.DiskPath, bytesText(o.MinFreeDisk))
		c.Fix = "free space there, point --disk-path elsewhere, or lower the limit with --min-free-disk"
	} else {
		c.Status, c.Detail = StatusOK, fmt.Sprintf("%s free under %s", bytesText(free), o.DiskPath)
	}
	cs.add(c)
}

const driverFix = "install the NVIDIA driver (it brings libcuda.so.1 and libnvidia-ml.so.1); in a container, start it through the NVIDIA Container Toolkit (--gpus all, or CDI)"

// cuda checks the driver, the GPUs and their settings, NVML and NCCL.
func (cs *checks) cuda(o Options, h Host) {
	libs := map[string]cuda.LibraryProbe{}
	for _, l := range h.Libraries() {
		libs[l.File] = l
	}
	libcuda := libs["libcuda.so.1"]
	c := Check{ID: "libcuda", Title: "NVIDIA driver (libcuda)"}
	if libcuda.Error != "" || libcuda.File == "" {
		c.Status, c.Detail, c.Fix = StatusMissing, orText(libcuda.Error, "not probed"), driverFix
	} else {
		c.Status, c.Version = StatusOK, libcuda.Version
		c.Detail = fmt.Sprintf("%s, CUDA %s", libcuda.File, libcuda.Version)
	}
	cs.add(c)

	gpus := Check{ID: "gpus", Title: "GPUs"}
	if c.Status != StatusOK {
		gpus.Status, gpus.Detail, gpus.Fix = StatusMissing, "no CUDA driver, so no GPU can be used", driverFix
	} else if n, err := h.CountGPUs(); err != nil {
		gpus.Status, gpus.Detail = StatusMissing, err.Error()
		gpus.Fix = "check `nvidia-smi`; the kernel module must match libcuda's version (reboot after a driver upgrade)"
	} else if n == 0 {
		gpus.Status, gpus.Detail = StatusMissing, "the CUDA driver sees no GPU"
		gpus.Fix = "check `nvidia-smi` and CUDA_VISIBLE_DEVICES; in a container, pass the GPUs in (--gpus all, or CDI)"
	} else if len(gpuEngines(o)) > 0 && n < o.TP {
		gpus.Status = StatusMissing
		gpus.Detail = fmt.Sprintf("%d GPU(s) visible to CUDA, but --tp %d needs %d", n, o.TP, o.TP)
		gpus.Fix = "lower --tp, or make more GPUs visible (CUDA_VISIBLE_DEVICES)"
	} else {
		gpus.Status, gpus.Detail = StatusOK, fmt.Sprintf("%d GPU(s) visible to CUDA", n)
	}
	cs.add(gpus)

	cs.telemetry(o, h)

	// Found by soname from here; engine libraries may find their own copy
	// through their RUNPATH (a Python wheel's, say), which their checks see.
	nccl := libs["libnccl.so.2"]
	c = Check{ID: "nccl", Title: "NCCL on the loader's path"}
	if nccl.Error != "" || nccl.File == "" {
		c.Status, c.Detail, c.Fix = StatusMissing, orText(nccl.Error, "not probed"), nccl.Fix
	} else {
		c.Status, c.Version, c.Detail = StatusOK, nccl.Version, fmt.Sprintf("%s %s", nccl.File, nccl.Version)
	}
	cs.add(c)
}

// telemetry checks NVML and, through it, each GPU and each pair of GPUs.
func (cs *checks) telemetry(o Options, h Host) {
	c := Check{ID: "nvml", Title: "GPU telemetry (NVML)"}
	t, err := h.OpenTelemetry()
	if err != nil {
		msg, fix, _ := strings.Cut(err.Error(), "\n")
		c.Status, c.Detail, c.Fix = StatusMissing, msg, strings.TrimSpace(fix)
		switch {
		case !cgoBuild:
			c.Fix = "this lmdrive was built without cgo (the -static tarball): for GPU telemetry use the cgo build (make dist)"
		case c.Fix == "":
			c.Fix = driverFix
		}
		cs.add(c)
		return
	}
	defer t.Close()
	inv, err := cuda.ReadInventory(t)
	if err != nil && !errors.Is(err, cuda.ErrNoGPUs) {
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "check `nvidia-smi -q`; NVML must be able to describe every GPU"
		cs.add(c)
		return
	}
	s := inv.System
	c.Status, c.Version = StatusOK, s.NVMLVersion.String()
	c.Detail = fmt.Sprintf("driver %s, CUDA %s, NVML %s, %d GPU(s)", s.DriverVersion, s.CUDADriverVersion, s.NVMLVersion, len(inv.Devices))
	cs.add(c)

	tp := o.TP > 1 && len(gpuEngines(o)) > 0
	for _, d := range inv.Devices {
		cs.device(t, d)
	}
	for _, p := range inv.Pairs {
		c := Check{ID: fmt.Sprintf("link.%d-%d", p.A, p.B), Title: fmt.Sprintf("GPU %d ↔ GPU %d", p.A, p.B), Status: StatusOK}
		via := ""
		if p.ViaNVSwitch {
			via = " through NVSwitches"
		}
		c.Detail = fmt.Sprintf("%s%s, P2P read %s, write %s", p.Label(), via, p.P2PRead, p.P2PWrite)
		if tp && (p.P2PRead.Value != cuda.P2POK || p.P2PWrite.Value != cuda.P2POK) {
			c.Status = StatusWarn
			c.Fix = "without peer-to-peer access NCCL copies through host memory and tensor-parallel runs slow down: " +
				"check `nvidia-smi topo -p2p rw`, the IOMMU and PCIe ACS settings"
		}
		cs.add(c)
	}
}

// device checks one GPU: identity and modes, persistence, clocks and power.
func (cs *checks) device(t cuda.Telemetry, d cuda.Device) {
	id := "gpu." + strconv.Itoa(d.Index)
	c := Check{ID: id, Title: fmt.Sprintf("GPU %d", d.Index), Status: StatusOK}
	c.Detail = fmt.Sprintf("%s, %s, compute capability %s, bus %s, %s", d.Name, mibText(d.MemoryTotalBytes), d.ComputeCapability, d.PCIBusID, d.UUID)
	var fixes []string
	if d.MIG.Current.Valid && d.MIG.Current.Value {
		c.Status = StatusWarn
		c.Detail += "; MIG mode is on"
		fixes = append(fixes, fmt.Sprintf("engines see MIG instances, not the whole GPU: `nvidia-smi -i %d -mig 0` and reset the GPU", d.Index))
	}
	if len(d.Problems) > 0 {
		c.Status = StatusWarn
		c.Detail += "; unreadable: " + strings.Join(d.Problems, "; ")
		fixes = append(fixes, "run as a user that may read every NVML field (root), or ignore these readings")
	}
	c.Fix = strings.Join(fixes, "; ")
	cs.add(c)

	if d.Persistence.Valid {
		c := Check{ID: id + ".persistence", Title: fmt.Sprintf("GPU %d persistence", d.Index), Status: StatusOK, Detail: "persistence mode on"}
		if !d.Persistence.Value {
			c.Status, c.Detail = StatusWarn, "persistence mode off"
			c.Fix = fmt.Sprintf("`sudo nvidia-smi -i %d -pm 1` or run nvidia-persistenced: without it the driver "+
				"tears the GPU down when no process uses it, which adds seconds to every engine load and resets clocks", d.Index)
		}
		cs.add(c)
	}

	c = Check{ID: id + ".clocks", Title: fmt.Sprintf("GPU %d clocks", d.Index), Status: StatusOK}
	c.Detail = fmt.Sprintf("SM max %s MHz (application %s), memory max %s MHz, power limit %s (default %s)",
		d.SMClock.MaxMHz, d.SMClock.ApplicationMHz, d.MemoryClock.MaxMHz, wattsText(d.PowerEnforcedLimitMW), wattsText(d.PowerDefaultLimitMW))
	fixes = nil
	if r, err := t.Read(d.Index); err == nil && r.Throttle.Valid {
		c.Detail += fmt.Sprintf("; now %s MHz, held down by: %s", r.SMClockMHz, r.Throttle.Value)
		if r.Throttle.Value.Slowing() {
			c.Status = StatusWarn
			fixes = append(fixes, "the clocks are held below their maximum by "+r.Throttle.Value.String()+
				": check cooling, power supply and power limits (`nvidia-smi -q -d PERFORMANCE`)")
		}
	}
	if lim, def := d.PowerEnforcedLimitMW, d.PowerDefaultLimitMW; lim.Valid && def.Valid && lim.Value < def.Value {
		c.Status = StatusWarn
		fixes = append(fixes, fmt.Sprintf("the power limit is below its default: `sudo nvidia-smi -i %d -pl %d` restores it", d.Index, def.Value/1000))
	}
	c.Fix = strings.Join(fixes, "; ")
	cs.add(c)
}

// engines checks each native engine's library and, after ref, the ref
// engine's CUDA plugin.
func (cs *checks) engines(o Options, h Host) {
	for _, name := range nativeEngines() {
		r := h.InspectEngine(name)
		c := Check{ID: "engine." + name, Title: "engine " + name}
		switch {
		case r.Error == "":
			c.Status, c.Version, c.ABI = StatusOK, r.Version, r.ABI
			c.Detail = fmt.Sprintf("%s %s, ABI %s, %s", r.Backend, r.Version, r.ABI, r.Library)
		case r.Library == "":
			c.Status, c.Detail = StatusMissing, "no "+driver.LibraryFile(name)+" found"
			c.Fix = "unpack the whole lmdrive tarball (bin/ beside lib/lmdrive/), point --lib-path or LMDRIVE_LIB_PATH at its folder, or build it with `make native`"
			if name != "ref" {
				c.Fix = "built only where its SDK is installed: see docs/engines.md"
			}
		default:
			c.Status, c.Detail = StatusMissing, r.Error
			c.Fix = "the library is there but does not load: install what the message names, or rebuild it together with this lmdrive (`make native`)"
		}
		cs.add(c)
		if name == "ref" {
			cs.refCUDA(o, h, c, r.Library)
		}
	}
}

// refCUDA checks the ref engine's CUDA plugin beside a working ref library.
// At --tp above 1 the plugin must link NCCL.
func (cs *checks) refCUDA(o Options, h Host, ref Check, refLib string) {
	c := Check{ID: "engine.ref.cuda", Title: "ref CUDA backend"}
	p, err := h.InspectRefCUDA(refLib)
	switch {
	case ref.Status != StatusOK:
		c.Status, c.Detail, c.Fix = StatusMissing, "needs a working liblmdrive_ref.so first", "see engine.ref"
	case err != nil:
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "build it on a host with nvcc (CUDA 12 or later): `make native`; at run time it needs the NVIDIA driver, cuBLAS and NCCL"
	case !p.NCCL && o.TP > 1:
		c.Status = StatusMissing
		c.Detail = fmt.Sprintf("plugin version %d, %s, built without NCCL: tensor parallelism is off, --tp %d cannot run", p.Version, p.Path, o.TP)
		c.Fix = "rebuild it where NCCL is found (NCCL_ROOT, or the nvidia-nccl wheel of the Python that holds PyTorch): `make native`"
	default:
		c.Status, c.Version = StatusOK, strconv.Itoa(p.Version)
		tp := "with NCCL (tensor parallel)"
		if !p.NCCL {
			tp = "without NCCL (one GPU only)"
		}
		c.Detail = fmt.Sprintf("plugin version %d, %s, %s", p.Version, tp, p.Path)
	}
	cs.add(c)
}

// python checks the interpreter and the packages of the Python engines:
// those a chosen engine needs are imported, the others only looked up.
func (cs *checks) python(ctx context.Context, o Options, h Host) {
	needed := map[string]bool{}
	cudaNeeded := map[string]bool{}
	for _, e := range o.Engines {
		for _, m := range pythonModules(e) {
			needed[m] = true
			if usesGPU(e, o.Device) {
				cudaNeeded[m] = true
			}
		}
	}
	modules := allPythonModules()
	c := Check{ID: "python", Title: "Python"}
	interp, err := h.FindPython(o.Python)
	var info PythonInfo
	if err == nil {
		queries := make([]ModuleQuery, len(modules))
		for i, m := range modules {
			queries[i] = ModuleQuery{Name: m, Import: needed[m]}
		}
		info, err = h.ProbePython(ctx, interp, queries)
	}
	switch {
	case err != nil:
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "install Python 3.9 or later, or point --python or LMDRIVE_PYTHON at an interpreter (a virtual environment's bin/python)"
	case !atLeast(info.Version, 3, 9):
		c.Status, c.Detail = StatusMissing, fmt.Sprintf("Python %s (%s) is older than 3.9", info.Version, info.Executable)
		c.Fix = "point --python or LMDRIVE_PYTHON at Python 3.9 or later"
	default:
		c.Status, c.Version, c.Detail = StatusOK, info.Version, fmt.Sprintf("Python %s, %s", info.Version, info.Executable)
	}
	cs.add(c)

	for _, m := range modules {
		c := Check{ID: "python." + m, Title: "python " + m}
		mi, probed := info.Modules[m]
		switch {
		case err != nil:
			c.Status, c.Detail, c.Fix = StatusMissing, "no working Python interpreter", "see python"
		case !probed:
			c.Status, c.Detail = StatusMissing, "the interpreter did not answer for this module"
		case mi.Error != "":
			c.Status, c.Detail = StatusMissing, mi.Error
			c.Fix = "pip install " + pipName(m) + " into " + info.Executable + "'s environment"
		default:
			c.Status, c.Version = StatusOK, mi.Version
			how := "installed (not imported: no chosen engine needs it)"
			if mi.Imported {
				how = "imported"
			}
			c.Detail = strings.TrimSpace(mi.Version + " " + how)
			if m == "torch" && mi.Imported {
				if mi.CUDA == "" {
					c.Detail += ", CPU-only build"
				} else {
					c.Detail += fmt.Sprintf(", built for CUDA %s, sees %d GPU(s)", mi.CUDA, mi.CUDAGPUs)
				}
				if cudaNeeded[m] && (mi.CUDA == "" || mi.CUDAGPUs == 0) {
					c.Status = StatusMissing
					c.Fix = "GPU engines need a CUDA build of PyTorch that sees the GPUs: install the build matching the driver's CUDA version (pytorch.org), and check CUDA_VISIBLE_DEVICES"
				}
			}
		}
		cs.add(c)
	}
}

func (cs *checks) tokenizer(h Host) {
	c := Check{ID: "tokenizer", Title: "tokenizer"}
	if desc, err := h.Tokenizer(); err != nil {
		c.Status, c.Detail = StatusMissing, err.Error()
		c.Fix = "this binary is damaged: reinstall lmdrive"
	} else {
		c.Status, c.Detail = StatusOK, desc
	}
	cs.add(c)
}

// pipName is the name a module is installed under.
func pipName(module string) string {
	if module == "tensorrt_llm" {
		return "tensorrt-llm"
	}
	return module
}

// atLeast reports whether a "major.minor.patch" version is at least
// major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func mibText(m cuda.Maybe[uint64]) string {
	if !m.Valid {
		return "memory " + cuda.NotAvailable
	}
	return bytesText(m.Value)
}

func wattsText(m cuda.Maybe[uint32]) string {
	if !m.Valid {
		return cuda.NotAvailable
	}
	return fmt.Sprintf("%d W", m.Value/1000)
}

// pluginPath is where liblmdrive_ref.so looks for its CUDA plugin.
func pluginPath(refLibrary string) string {
	return filepath.Join(filepath.Dir(refLibrary), "liblmdrive_ref_cuda.so")
}
