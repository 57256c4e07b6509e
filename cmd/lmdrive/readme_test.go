package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/urfave/cli/v2"
)

// The command lines a user is shown, in README.md and in the examples of
// every command's --help, are run here, top to bottom, so that none of them
// rots. Conventions, for whoever edits README.md:
//
//   - every line of a ```sh block is a command line and runs (a trailing
//     backslash joins the next line; # starts a comment);
//   - a line whose comment says "(needs a GPU)", or every line of a block
//     preceded by the line <!-- needs a GPU -->, runs only where NVML finds
//     a GPU and LMDRIVE_README_GPU=1 is set (on the GPU machines); the line
//     that runs the GPU script itself is left to that script's own run;
//   - a block preceded by <!-- not run by the README test: REASON --> is
//     left out, its reason logged: for lines another test runs where they
//     belong (the tarball checks, which make test-dist runs in the unpacked
//     tarball);
//   - a line using the Python test environment (build/pyenv, make pyenv) is
//     left out under LMDRIVE_SKIP_PY=1, as the Python tests are;
//   - `make` lines are checked with `make -n` (the targets exist): CI runs
//     `make test` and `make run` themselves;
//   - the placeholder path/to/hf-checkpoint stands for a checkpoint the test
//     writes first (lmdrive model init); /tmp/<name> paths are moved into
//     the test's own folder;
//   - a line exits 0, or with the status its command documents for what it
//     is there to find (findingStatus: `lmdrive eos` 3, a sample stopped
//     early; `lmdrive doctor` 2, a chosen engine lacks something here).
//
// Help examples are the lines starting with "lmdrive " under an "Examples:"
// line in a command's --help (its Description).

// example is one documented command line.
type example struct {
	where string // README.md:12, or `lmdrive run --help`
	line  string
	gpu   bool
	skip  string // why the README says it is not run here
}

var notRunMarker = regexp.MustCompile(`^<!-- not run by the README test: (.+\S) -->$`)

const gpuMarker = "(needs a GPU)"

// findingStatus is the exit status a command documents for a finding
// rather than a failure.
var findingStatus = map[string]int{"eos": 3, "doctor": 2}

// acceptable tells whether a line's exit status is success or its
// command's documented finding.
func acceptable(line string, cmd *exec.Cmd) bool {
	if cmd.ProcessState == nil {
		return false
	}
	code := cmd.ProcessState.ExitCode()
	if code == 0 {
		return true
	}
	fields := strings.Fields(line)
	for i, f := range fields {
		if strings.HasSuffix(f, "lmdrive") && i+1 < len(fields) {
			want, ok := findingStatus[fields[i+1]]
			return ok && code == want
		}
	}
	return false
}

// readmeExamples returns the command lines of README.md's shell blocks.
func readmeExamples(t *testing.T, path string) []example {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out         []example
		inBlock     bool
		blockGPU    bool
		pendingGPU  bool
		blockSkip   string
		pendingSkip string
		cont        string
	)
	for i, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case !inBlock && line == "<!-- needs a GPU -->":
			pendingGPU = true
		case !inBlock && notRunMarker.MatchString(line):
			pendingSkip = notRunMarker.FindStringSubmatch(line)[1]
		case !inBlock && regexp.MustCompile("^```(sh|bash|shell)$").MatchString(line):
			inBlock, blockGPU, pendingGPU = true, pendingGPU, false
			blockSkip, pendingSkip = pendingSkip, ""
		case inBlock && line == "```":
			inBlock = false
		case inBlock:
			if cont != "" {
				line = cont + " " + line
				cont = ""
			}
			if strings.HasSuffix(line, "\\") {
				cont = strings.TrimSuffix(line, "\\")
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, example{where: fmt.Sprintf("%s:%d", filepath.Base(path), i+1), line: line,
				gpu: blockGPU || strings.Contains(line, gpuMarker), skip: blockSkip})
		case line != "":
			pendingGPU, pendingSkip = false, ""
		}
	}
	if inBlock {
		t.Fatalf("%s: a ``` block is not closed", path)
	}
	return out
}

// helpExamples returns the lines starting with "lmdrive " in the help of
// every visible command and subcommand.
func helpExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			args := append(append([]string{}, path...), c.Name, "--help")
			stdout, _, err := lmdrive(t, args...)
			if err != nil {
				t.Fatalf("lmdrive %s: %v", strings.Join(args, " "), err)
			}
			sc := bufio.NewScanner(strings.NewReader(stdout))
			inExamples := false
			for sc.Scan() {
				l := strings.TrimSpace(sc.Text())
				switch {
				case l == "Examples:":
					inExamples = true
				case inExamples && strings.HasPrefix(l, "lmdrive "):
					out = append(out, example{where: "`lmdrive " + strings.Join(args, " ") + "`",
						line: "build/bin/" + l, gpu: strings.Contains(l, gpuMarker)})
				case inExamples && l != "":
					inExamples = false
				}
			}
			walk(append(append([]string{}, path...), c.Name), c.Subcommands)
		}
	}
	walk(nil, commands())
	return out
}

// hasGPU tells whether NVML sees a GPU here.
func hasGPU() bool {
	tel, err := nvml.Open()
	if err != nil {
		return false
	}
	defer tel.Close()
	return tel.DeviceCount() > 0
}

// workFolder is a folder that looks like the repository to a command line
// (its source folders are linked in) with build/bin/lmdrive the binary
// under test, but writes (results/, out/) land in the test's own folder.
func workFolder(t *testing.T, repo, bin string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "build", "results", "out", "dist", ".git":
			continue
		}
		os.Symlink(filepath.Join(repo, e.Name()), filepath.Join(dir, e.Name()))
	}
	os.MkdirAll(filepath.Join(dir, "build", "bin"), 0o755)
	if err := os.Symlink(bin, filepath.Join(dir, "build", "bin", "lmdrive")); err != nil {
		t.Fatal(err)
	}
	// The rest of the build folder (the engine libraries, the Python test
	// environment) as built.
	built, _ := os.ReadDir(filepath.Join(repo, "build"))
	for _, e := range built {
		if e.Name() != "bin" {
			os.Symlink(filepath.Join(repo, "build", e.Name()), filepath.Join(dir, "build", e.Name()))
		}
	}
	return dir
}

var tmpPath = regexp.MustCompile(`(^|\s)/tmp/([A-Za-z0-9._-]+)`)

func TestREADMEAndHelpExamplesRun(t *testing.T) {
	bin := os.Getenv("LMDRIVE_BIN")
	if bin == "" {
		if os.Getenv("LMDRIVE_REQUIRE_NATIVE") == "1" {
			t.Fatal("LMDRIVE_BIN is not set (make test sets it)")
		}
		t.Skip("LMDRIVE_BIN not set: run through make test, or set it to a built lmdrive")
	}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	examples := append(readmeExamples(t, filepath.Join(repo, "README.md")), helpExamples(t)...)
	if len(examples) < 10 {
		t.Fatalf("only %d examples found: has the README's layout changed?", len(examples))
	}
	gpu := os.Getenv("LMDRIVE_README_GPU") == "1" && hasGPU()
	dir := workFolder(t, repo, bin)
	scratch := t.TempDir()
	ckpt := filepath.Join(scratch, "hf-checkpoint")
	if out, err := exec.Command(bin, "model", "init", "--preset", "tiny", "--out", ckpt).CombinedOutput(); err != nil {
		t.Fatalf("checkpoint for path/to/hf-checkpoint: %v\n%s", err, out)
	}
	ran := 0
	for _, ex := range examples {
		if ex.skip != "" {
			t.Logf("%s: not run here (%s): %s", ex.where, ex.skip, ex.line)
			continue
		}
		if ex.gpu && !gpu {
			t.Logf("%s: needs a GPU, not run here: %s", ex.where, ex.line)
			continue
		}
		if strings.Contains(ex.line, "build/pyenv") && os.Getenv("LMDRIVE_SKIP_PY") == "1" {
			t.Logf("%s: LMDRIVE_SKIP_PY=1, no Python test environment: %s", ex.where, ex.line)
			continue
		}
		if strings.Contains(ex.line, "gpu_check.sh") {
			t.Logf("%s: the GPU script runs on its own: %s", ex.where, ex.line)
			continue
		}
		line := tmpPath.ReplaceAllString(ex.line, "${1}"+scratch+"/tmp-$2")
		line = strings.ReplaceAll(line, "path/to/hf-checkpoint", ckpt)
		if strings.HasPrefix(line, "make ") {
			line = "make -n " + strings.TrimPrefix(line, "make ") + " >/dev/null"
			line = strings.Replace(line, "make -n", "make -n -C "+repo, 1)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LMDRIVE_QUIET_ENGINE=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		cancel()
		if err != nil && !acceptable(line, cmd) {
			t.Errorf("%s: %s\n%v after %v; output:\n%s", ex.where, ex.line, err, time.Since(start).Round(time.Millisecond), out.String())
			continue
		}
		t.Logf("%s: ok in %v: %s", ex.where, time.Since(start).Round(time.Millisecond), ex.line)
		ran++
	}
	if ran == 0 {
		t.Fatal("no example ran")
	}
}
