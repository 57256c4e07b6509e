package nvml

import (
	"fmt"

	"github.com/lmdrive/lmdrive/cuda"
)

// DefaultLibrary is the file name the dynamic linker is asked for.
const DefaultLibrary = "libnvidia-ml.so.1"

// noCgoError is what Open returns in a build without cgo.
func noCgoError() error {
	return cuda.Unavailable("GPU telemetry needs a cgo build of lmdrive; this binary was built with CGO_ENABLED=0 "+
		"(rebuild with CGO_ENABLED=1 and a C compiler; the NVIDIA driver is not needed to build)", nil)
}

// libraryError explains a failed dlopen of the NVML library. cause carries
// the dynamic linker's own message (dlerror).
func libraryError(path string, cause error) error {
	msg := fmt.Sprintf("cannot load NVML, the NVIDIA management library (%s): %v\n"+
		"NVML comes with the NVIDIA driver. Either the driver is not installed, or the directory holding "+
		"its libraries is not on the dynamic linker's path: check `ldconfig -p | grep libnvidia-ml` and, "+
		"if the library lives elsewhere, add its directory to LD_LIBRARY_PATH. In a container, start it "+
		"through the NVIDIA Container Toolkit (docker run --gpus all, or --device nvidia.com/gpu=all with CDI) "+
		"so that the driver's libraries and devices are mounted.", path, cause)
	return cuda.Unavailable(msg, cause)
}
