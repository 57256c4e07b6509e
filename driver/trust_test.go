package driver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plant writes a stand-in library file at dir/liblmdrive_ref.so.
func plant(t *testing.T, dir string) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, LibraryFile("ref"))
	if err := os.WriteFile(path, []byte("not really a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUntrustedLibrariesAreRefused(t *testing.T) {
	root := t.TempDir()
	// A folder everyone may write to: anyone could have put the file there.
	open := filepath.Join(root, "open")
	lib := plant(t, open)
	os.Chmod(open, 0o777)
	if err := CheckTrusted(lib); err == nil || !strings.Contains(err.Error(), "the folder "+open+" is writable by every user") ||
		!strings.Contains(err.Error(), "--allow-untrusted-lib or LMDRIVE_ALLOW_UNTRUSTED_LIB=1") {
		t.Fatalf("world-writable folder: %v", err)
	}
	// The same with the sticky bit, as /tmp: still anyone's file.
	os.Chmod(open, 0o777|os.ModeSticky)
	if err := CheckTrusted(lib); err == nil {
		t.Fatal("a library in a sticky world-writable folder was trusted")
	}
	// A folder of ours inside a sticky one (as t.TempDir() in /tmp) is fine...
	mine := plant(t, filepath.Join(open, "mine"))
	if err := CheckTrusted(mine); err != nil {
		t.Fatalf("own folder under a sticky one: %v", err)
	}
	// ...but not inside a world-writable one without the sticky bit: the
	// folder could be renamed away and replaced.
	os.Chmod(open, 0o777)
	if err := CheckTrusted(mine); err == nil || !strings.Contains(err.Error(), "the folder "+open+" is writable by every user") {
		t.Fatalf("under a world-writable folder: %v", err)
	}
	// A file everyone may change.
	file := plant(t, filepath.Join(root, "file"))
	os.Chmod(file, 0o666)
	if err := CheckTrusted(file); err == nil || !strings.Contains(err.Error(), "is writable by every user") {
		t.Fatalf("world-writable file: %v", err)
	}
	// A link from a safe folder to an unsafe one.
	link := filepath.Join(root, "link", LibraryFile("ref"))
	os.MkdirAll(filepath.Dir(link), 0o755)
	os.Symlink(lib, link)
	if err := CheckTrusted(link); err == nil {
		t.Fatal("a link to a library in a world-writable folder was trusted")
	}
}

func TestLibraryOfAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file to another user")
	}
	lib := plant(t, filepath.Join(t.TempDir(), "theirs"))
	if err := os.Chown(lib, 4242, 4242); err != nil {
		t.Skip(err)
	}
	if err := CheckTrusted(lib); err == nil || !strings.Contains(err.Error(), "belongs to user 4242, not to you (user 0) or root") {
		t.Fatalf("another user's file: %v", err)
	}
	os.Chown(lib, 0, 0)
	os.Chown(filepath.Dir(lib), 4242, 4242)
	if err := CheckTrusted(lib); err == nil || !strings.Contains(err.Error(), "belongs to user 4242") {
		t.Fatalf("another user's folder: %v", err)
	}
}

// Open refuses before loading anything, unless allowed; Inspect (lmdrive
// engines, doctor) reports the refusal.
func TestOpenRefusesAnUntrustedLibraryUnlessAllowed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	plant(t, dir)
	os.Chmod(dir, 0o777)
	o := OpenOptions{Engine: "ref", Search: Search{Flag: dir}, Config: json.RawMessage(`{}`), InProcess: true}
	if _, err := Open(context.Background(), o); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("untrusted: %v", err)
	}
	if r := Inspect("ref", o.Search); !strings.Contains(r.Error, "writable by every user") {
		t.Fatalf("inspect: %+v", r)
	}
	o.Search.AllowUntrusted = true
	if _, err := Open(context.Background(), o); err == nil || strings.Contains(err.Error(), "writable by every user") ||
		!strings.Contains(err.Error(), "load engine library") {
		t.Fatalf("allowed: the stand-in file should reach the loader: %v", err)
	}
}
