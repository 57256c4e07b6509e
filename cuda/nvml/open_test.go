package nvml

import (
	"errors"
	"testing"

	"github.com/lmdrive/lmdrive/cuda"
)

// TestOpenWithoutLibrary opens a library that cannot exist. With cgo it must
// fail with the dynamic linker's reason; without cgo, with the build message.
// Either way the error matches cuda.ErrUnavailable and nothing panics.
func TestOpenWithoutLibrary(t *testing.T) {
	tel, err := OpenLibrary("libnvidia-ml-lmdrive-test-missing.so.1")
	if err == nil {
		_ = tel.Close()
		t.Fatal("opened a library that does not exist")
	}
	if !errors.Is(err, cuda.ErrUnavailable) {
		t.Errorf("error %v does not match cuda.ErrUnavailable", err)
	}
	t.Log(err)
}
