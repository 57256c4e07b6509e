package doctor

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The real host's probes that need no GPU.

func TestSystemProbePython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 here")
	}
	s := System{PythonTimeout: time.Minute}
	info, err := s.ProbePython(context.Background(), py, []ModuleQuery{
		{Name: "json", Import: true}, {Name: "no_such_module_lmdrive", Import: true}, {Name: "no_such_module_lmdrive2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !atLeast(info.Version, 3, 0) || info.Executable == "" {
		t.Fatalf("info %+v", info)
	}
	if m := info.Modules["json"]; !m.Imported || m.Version == "" || m.Error != "" {
		t.Fatalf("json: %+v", m)
	}
	if m := info.Modules["no_such_module_lmdrive"]; !strings.HasPrefix(m.Error, "ModuleNotFoundError") {
		t.Fatalf("missing import: %+v", m)
	}
	if m := info.Modules["no_such_module_lmdrive2"]; m.Error != "not installed" {
		t.Fatalf("missing lookup: %+v", m)
	}
	// Something that is not Python fails with a message, not a panic.
	if _, err := s.ProbePython(context.Background(), "/bin/false", nil); err == nil || !strings.Contains(err.Error(), "/bin/false failed") {
		t.Fatalf("not python: %v", err)
	}
}

func TestSystemFindPython(t *testing.T) {
	t.Setenv("LMDRIVE_PYTHON", "/nonexistent/python")
	if _, err := (System{}).FindPython(""); err == nil || !strings.Contains(err.Error(), "LMDRIVE_PYTHON /nonexistent/python") {
		t.Fatalf("env: %v", err)
	}
	if _, err := (System{}).FindPython("/nonexistent/py"); err == nil || !strings.Contains(err.Error(), "--python /nonexistent/py") {
		t.Fatalf("flag: %v", err)
	}
}

func TestSystemHost(t *testing.T) {
	s := System{}
	dir := t.TempDir()
	if free, err := s.FreeDisk(dir); err != nil || free == 0 {
		t.Fatalf("free disk: %d %v", free, err)
	}
	if _, err := s.FreeDisk(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("no error for a missing folder")
	}
	if avail, total, err := s.Memory(); err != nil || avail == 0 || avail > total {
		t.Fatalf("memory: %d of %d, %v", avail, total, err)
	}
	if _, err := s.InspectRefCUDA(filepath.Join(dir, "liblmdrive_ref.so")); err == nil || !strings.Contains(err.Error(), "no CUDA backend") {
		t.Fatalf("plugin: %v", err)
	}
	if libs, err := neededLibraries("/proc/self/exe"); err != nil || !slices.Contains(libs, "libc.so.6") {
		t.Fatalf("needed by the test binary: %v %v", libs, err)
	}
	if _, err := neededLibraries(filepath.Join(dir, "nope.so")); err == nil {
		t.Fatal("no error for a missing file")
	}
	if desc, err := s.Tokenizer(); err != nil || !strings.Contains(desc, "Qwen2.5") {
		t.Fatalf("tokenizer: %q %v", desc, err)
	}
}
