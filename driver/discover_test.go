package driver

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSearchOrder(t *testing.T) {
	s := Search{Flag: "/opt/x", EnvPath: "/env/a:/env/b", Executable: "/app/bin/lmdrive", WorkDir: "/src"}
	got := s.Candidates("ref")
	want := []string{
		"/opt/x/liblmdrive_ref.so",
		"/env/a/liblmdrive_ref.so", "/env/b/liblmdrive_ref.so",
		"/app/lib/lmdrive/liblmdrive_ref.so", "/app/bin/liblmdrive_ref.so",
		"/src/build/lib/lmdrive/liblmdrive_ref.so",
	}
	if len(got) != len(want) {
		t.Fatalf("candidates %v", got)
	}
	for i := range want {
		if filepath.Clean(got[i]) != want[i] {
			t.Errorf("candidate %d = %s, want %s", i, got[i], want[i])
		}
	}
	// A flag naming a file is used as is.
	if c := (Search{Flag: "/x/custom.so"}).Candidates("ref"); len(c) != 1 || c[0] != "/x/custom.so" {
		t.Errorf("file flag: %v", c)
	}
}

func TestSearchFind(t *testing.T) {
	s := Search{EnvPath: "/env/a:/env/b", Executable: "/app/bin/lmdrive"}
	path, err := s.Find("ref", func(p string) bool { return p == "/env/b/liblmdrive_ref.so" })
	if err != nil || path != "/env/b/liblmdrive_ref.so" {
		t.Fatalf("Find = %q, %v", path, err)
	}
	_, err = s.Find("ref", func(string) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "make native") || !strings.Contains(err.Error(), "/env/a/liblmdrive_ref.so") {
		t.Fatalf("not found error = %v", err)
	}
	_, err = s.Find("trtllm", func(string) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "docs/engines.md") {
		t.Fatalf("trtllm not found error = %v", err)
	}
}
