package nvml

import (
	"errors"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/cuda"
)

func TestNoCgoError(t *testing.T) {
	err := noCgoError()
	want := "GPU telemetry needs a cgo build of lmdrive; this binary was built with CGO_ENABLED=0"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, cuda.ErrUnavailable) {
		t.Error("does not match cuda.ErrUnavailable")
	}
}

func TestLibraryError(t *testing.T) {
	dlerr := errors.New("libnvidia-ml.so.1: cannot open shared object file: No such file or directory")
	err := libraryError(DefaultLibrary, dlerr)
	for _, want := range []string{
		"cannot load NVML, the NVIDIA management library (libnvidia-ml.so.1)",
		dlerr.Error(),
		"driver is not installed",
		"LD_LIBRARY_PATH",
		"NVIDIA Container Toolkit",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, err)
		}
	}
	if !errors.Is(err, cuda.ErrUnavailable) || !errors.Is(err, dlerr) {
		t.Error("error does not match cuda.ErrUnavailable and wrap the dlerror")
	}
}
