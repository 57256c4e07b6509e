// Package pyenvtest finds the Python interpreter of the tests of the Python
// engines: LMDRIVE_PYTHON, else the test environment `make pyenv` builds
// (build/pyenv), else, for tests that need no library, python3 on PATH.
package pyenvtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Interpreter returns the interpreter to test with. needLibs: it must import
// torch and transformers. LMDRIVE_SKIP_PY=1 skips the test; a missing or
// unusable interpreter fails it with the fix.
func Interpreter(t testing.TB, needLibs bool) string {
	t.Helper()
	if os.Getenv("LMDRIVE_SKIP_PY") == "1" {
		t.Skip("LMDRIVE_SKIP_PY=1: Python engine test skipped")
	}
	py := os.Getenv("LMDRIVE_PYTHON")
	if venv := filepath.Join(repoRoot(), "build", "pyenv", "bin", "python"); py == "" && exists(venv) {
		py = venv
	}
	if py == "" && !needLibs {
		py, _ = exec.LookPath("python3")
	}
	if py == "" {
		t.Fatal("no Python test environment: run `make pyenv` (build/pyenv with the pinned torch and transformers), " +
			"set LMDRIVE_PYTHON to an interpreter that has them, or set LMDRIVE_SKIP_PY=1 to skip Python tests")
	}
	if needLibs {
		if err := hasLibs(py); err != nil {
			t.Fatalf("%s cannot import torch and transformers (%v); run `make pyenv` or set LMDRIVE_SKIP_PY=1", py, err)
		}
	}
	return py
}

// checked holds each interpreter's `import torch, transformers` outcome:
// the import takes seconds, and every Python test asks.
var checked sync.Map // interpreter → error, or nil

func hasLibs(py string) error {
	if v, ok := checked.Load(py); ok {
		err, _ := v.(error)
		return err
	}
	var err error
	if out, cerr := exec.Command(py, "-c", "import torch, transformers").CombinedOutput(); cerr != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		err = errors.New(lines[len(lines)-1])
	}
	checked.Store(py, err)
	return err
}

// repoRoot is the nearest folder at or above the test's working folder
// (its package's) that holds go.mod.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if exists(filepath.Join(d, "go.mod")) {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
