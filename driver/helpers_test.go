package driver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets this test binary act as a runner child, so RemoteEngine is
// tested against the real protocol without building lmdrive first.
func TestMain(m *testing.M) {
	if os.Getenv("LMDRIVE_TEST_RUNNER") == "1" {
		if err := ServeProcess(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testRunner is the command and environment that start this binary as a runner.
func testRunner() ([]string, []string) {
	return []string{os.Args[0]}, []string{"LMDRIVE_TEST_RUNNER=1"}
}

// cCompiler returns the C compiler go would use, or skips the test.
func cCompiler(t *testing.T) string {
	t.Helper()
	cc := "cc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(string(out))[0]
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s) to build test libraries", cc)
	}
	return cc
}

// buildFakeEngine compiles testdata/fake_engine.c with extra flags into a
// shared library in a temporary folder and returns its path.
func buildFakeEngine(t *testing.T, flags ...string) string {
	t.Helper()
	cc := cCompiler(t)
	out := filepath.Join(t.TempDir(), "liblmdrive_fake.so")
	args := append([]string{"-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I", filepath.Join("..", "native", "include"),
		"-o", out, filepath.Join("testdata", "fake_engine.c"), "-lpthread", "-lm"}, flags...)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("build fake engine: %v\n%s", err, b)
	}
	return out
}
