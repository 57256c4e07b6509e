//go:build !cgo

package nvml

import "github.com/lmdrive/lmdrive/cuda"

// Open fails in a build without cgo: go-nvml cannot be compiled without it.
func Open() (cuda.Telemetry, error) { return nil, noCgoError() }

// OpenLibrary fails in a build without cgo, like Open.
func OpenLibrary(path string) (cuda.Telemetry, error) { return nil, noCgoError() }
