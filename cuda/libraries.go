package cuda

import (
	"fmt"

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
