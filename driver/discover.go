package driver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LibraryFile is the file name of an engine's library: liblmdrive_<engine>.so.
func LibraryFile(engine string) string { return "liblmdrive_" + engine + ".so" }

// Search says where to look for engine libraries, in order:
//  1. Flag: a file or folder given on the command line (--lib-path);
//  2. EnvPath: LMDRIVE_LIB_PATH, a colon-separated list of folders;
//  3. next to the executable: <dir of exe>/../lib/lmdrive (the dist layout
//     and the build tree's build/bin → build/lib/lmdrive), then <dir of exe>;
//  4. the build tree of the working directory: build/lib/lmdrive.
//
// Locate also refuses a library that others could have planted or changed
// (CheckTrusted), unless AllowUntrusted is set.
type Search struct {
	Flag           string
	EnvPath        string
	Executable     string
	WorkDir        string
	AllowUntrusted bool
}

// DefaultSearch fills Search from the process: LMDRIVE_LIB_PATH, the running
// executable, the working directory and LMDRIVE_ALLOW_UNTRUSTED_LIB.
func DefaultSearch(flag string) Search {
	exe, _ := os.Executable()
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	wd, _ := os.Getwd()
	return Search{Flag: flag, EnvPath: os.Getenv("LMDRIVE_LIB_PATH"), Executable: exe, WorkDir: wd,
		AllowUntrusted: os.Getenv(AllowUntrustedEnv) == "1"}
}

// Locate finds an engine's library file (Find) and checks that it can be
// trusted (CheckTrusted) unless s.AllowUntrusted.
func (s Search) Locate(engine string) (string, error) {
	path, err := s.Find(engine, FileExists)
	if err != nil {
		return "", err
	}
	if !s.AllowUntrusted {
		if err := CheckTrusted(path); err != nil {
			return "", err
		}
	}
	return path, nil
}

// Candidates lists the paths tried for an engine, in order.
func (s Search) Candidates(engine string) []string {
	file := LibraryFile(engine)
	var out []string
	if s.Flag != "" {
		if strings.HasSuffix(s.Flag, ".so") {
			out = append(out, s.Flag)
		} else {
			out = append(out, filepath.Join(s.Flag, file))
		}
	}
	for _, dir := range filepath.SplitList(s.EnvPath) {
		if dir != "" {
			out = append(out, filepath.Join(dir, file))
		}
	}
	if s.Executable != "" {
		dir := filepath.Dir(s.Executable)
		out = append(out, filepath.Join(dir, "..", "lib", "lmdrive", file), filepath.Join(dir, file))
	}
	if s.WorkDir != "" {
		out = append(out, filepath.Join(s.WorkDir, "build", "lib", "lmdrive", file))
	}
	return out
}

// Find returns the first candidate for which exists is true. The error lists
// every place tried and how to build the library.
func (s Search) Find(engine string, exists func(string) bool) (string, error) {
	cands := s.Candidates(engine)
	for _, c := range cands {
		if exists(c) {
			return filepath.Clean(c), nil
		}
	}
	how := "build it with `make native`"
	switch engine {
	case "trtllm", "turbomind":
		how = "it is built only where its SDK is installed: see docs/engines.md"
	}
	return "", fmt.Errorf("no library for engine %q: looked for %s in\n  %s\n%s, or point --lib-path or LMDRIVE_LIB_PATH at its folder",
		engine, LibraryFile(engine), strings.Join(cands, "\n  "), how)
}

// FileExists is the exists function Find uses outside tests.
func FileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
