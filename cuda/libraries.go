package cuda

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibraryProbe says whether one system library loads and which version it
// reports.
type LibraryProbe struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// ProbeLibraries loads the CUDA driver API and NCCL the way engines will
// (dlopen by soname) and asks each for its version. It needs no cgo.
func ProbeLibraries() []LibraryProbe {
	return []LibraryProbe{
		probe("CUDA driver", "libcuda.so.1", "cuDriverGetVersion", func(v int32) string {
			return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
		}, "install the NVIDIA driver; in a container, start it through the NVIDIA Container Toolkit"),
		probe("NCCL", "libnccl.so.2", "ncclGetVersion", func(v int32) string {
			return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
		}, "install NCCL (libnccl2) or add the folder holding libnccl.so.2 to LD_LIBRARY_PATH; only tensor-parallel engines need it"),
	}
}

func probe(name, file, fn string, format func(int32) string, fix string) LibraryProbe {
	p := LibraryProbe{Name: name, File: file}
	h, err := purego.Dlopen(file, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		p.Error, p.Fix = err.Error(), fix
		return p
	}
	defer purego.Dlclose(h)
	sym, err := purego.Dlsym(h, fn)
	if err != nil {
		p.Error = fmt.Sprintf("%s has no %s", file, fn)
		return p
	}
	var getVersion func(*int32) int32
	purego.RegisterFunc(&getVersion, sym)
	var v int32
	if rc := getVersion(&v); rc != 0 {
		p.Error = fmt.Sprintf("%s returned error %d", fn, rc)
		return p
	}
	p.Version = format(v)
	return p
}

// CountDevices asks the CUDA driver API (libcuda.so.1, through cuInit and
// cuDeviceGetCount) how many GPUs this process can use. Unlike NVML it needs
// no cgo, and it honours CUDA_VISIBLE_DEVICES as engines will.
func CountDevices() (int, error) {
	h, err := purego.Dlopen("libcuda.so.1", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return 0, fmt.Errorf("cannot load the CUDA driver: %w", err)
	}
	// Never dlclose: cuInit leaves driver threads running inside libcuda.
	var cuInit func(uint32) int32
	var cuDeviceGetCount func(*int32) int32
	var cuGetErrorString func(int32, **byte) int32
	for name, fn := range map[string]any{"cuInit": &cuInit, "cuDeviceGetCount": &cuDeviceGetCount, "cuGetErrorString": &cuGetErrorString} {
		sym, err := purego.Dlsym(h, name)
		if err != nil {
			return 0, fmt.Errorf("libcuda.so.1 has no %s: %w", name, err)
		}
		purego.RegisterFunc(fn, sym)
	}
	describe := func(call string, rc int32) error {
		var msg *byte
		text := "unknown error"
		if cuGetErrorString(rc, &msg) == 0 && msg != nil {
			text = goString(msg)
		}
		return fmt.Errorf("%s failed: %s (CUresult %d)", call, text, rc)
	}
	if rc := cuInit(0); rc != 0 {
		if rc == cudaErrorNoDevice {
			return 0, nil
		}
		return 0, describe("cuInit", rc)
	}
	var n int32
	if rc := cuDeviceGetCount(&n); rc != 0 {
		return 0, describe("cuDeviceGetCount", rc)
	}
	return int(n), nil
}

// cudaErrorNoDevice is CUDA_ERROR_NO_DEVICE: the driver is fine, but no GPU
// is visible (CUDA_VISIBLE_DEVICES is empty, or the devices are not passed in).
const cudaErrorNoDevice = 100

// goString copies a NUL-terminated C string that the driver owns.
func goString(p *byte) string {
	var b []byte
	for ptr := unsafe.Pointer(p); *(*byte)(ptr) != 0; ptr = unsafe.Add(ptr, 1) {
		b = append(b, *(*byte)(ptr))
	}
	return string(b)
}
