package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// TestMain lets the test binary serve as `lmdrive runner`, which is how the
// run and eos commands start their engine child.
//
// With LMDRIVE_TEST_AS_MAIN=1 it is the whole lmdrive program instead
// (signals and exit codes included), for tests that need a real process.
func TestMain(m *testing.M) {
	if os.Getenv("LMDRIVE_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "runner" {
		if err := driver.ServeProcess(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// refLibDir is the folder holding liblmdrive_ref.so, or the test skips
// (fails under LMDRIVE_REQUIRE_NATIVE=1).
func refLibDir(t *testing.T) string {
	t.Helper()
	for _, dir := range append(filepath.SplitList(os.Getenv("LMDRIVE_LIB_PATH")), filepath.Join("..", "..", "build", "lib", "lmdrive")) {
		if driver.FileExists(filepath.Join(dir, driver.LibraryFile("ref"))) {
			abs, _ := filepath.Abs(dir)
			return abs
		}
	}
	if os.Getenv("LMDRIVE_REQUIRE_NATIVE") == "1" {
		t.Fatal("reference engine library missing (make native)")
	}
	t.Skip("reference engine library not built (make native)")
	return ""
}

// lmdrive runs the command line in-process and returns stdout, stderr, error.
func lmdrive(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	t.Setenv("LMDRIVE_QUIET_ENGINE", "1")
	err := run(context.Background(), append([]string{"lmdrive"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRunCommandEndToEnd(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	stdout, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--prompt-tokens", "64",
		"--max-new", "8", "--ignore-eos", "--warmup", "1", "--repeats", "2", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"| Engine / Config | Prompt->Gen (tokens) |", "| ref (ref-cpu, random:tiny, ignore_eos) | 0.064k->0.008k |", "2 records appended"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	b, _ := os.ReadFile(out)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("%d records in %s", n, out)
	}
	// The saved records render again as a digest row and as Go benchmark lines.
	md, _, err := lmdrive(t, "report", out)
	if err != nil || !strings.Contains(md, "| ref (ref-cpu, random:tiny, ignore_eos) | 0.064k->0.008k |") {
		t.Fatalf("report: %v\n%s", err, md)
	}
	gb, _, err := lmdrive(t, "report", "--format", "gobench", out)
	if err != nil || strings.Count(gb, "BenchmarkGenerate/model=tiny/precision=fp32/label=ref_ref-cpu_random:tiny_ignore_eos/prompt=64/gen=8 1 ") != 2 {
		t.Fatalf("gobench: %v\n%s", err, gb)
	}
	if _, _, err := lmdrive(t, "report", "--format", "xml", out); err == nil || !strings.Contains(err.Error(), "want markdown, csv, json, gobench") {
		t.Fatalf("bad format: %v", err)
	}
}

func TestRunCommandBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--repeats", "0"}, "--repeats must be at least 1"},
		{[]string{"run", "--max-new", "0"}, "--max-new must be at least 1"},
		{[]string{"run", "--engine", "nope", "--lib-path", t.TempDir()}, `no library for engine "nope"`},
		{[]string{"run", "--engine-config", "{bad"}, "--engine-config is not a JSON object"},
		{[]string{"run", "extra"}, "takes no arguments"},
		{[]string{"model", "init", "--preset", "huge", "--out", t.TempDir()}, "unknown preset \"huge\"; choose one of: tiny"},
		{[]string{"eos", "--stop", "12 x"}, `"x" is not a token id`},
		{[]string{"eos", "--compare", "a.json"}, "exactly two reports"},
	}
	for _, tc := range cases {
		_, _, err := lmdrive(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v; want %q", tc.args, err, tc.want)
		}
	}
}

// --precision reaches the engine; its record names the precision it ran.
func TestRunCommandPrecision(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	_, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--precision", "int8", "--prompt-tokens", "16",
		"--max-new", "4", "--ignore-eos", "--warmup", "0", "--repeats", "1", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), `"dtype":"int8/fp32"`) {
		t.Errorf("the record lacks the int8 precision:\n%s", b)
	}
	_, _, err = lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--precision", "fp8", "--warmup", "0",
		"--repeats", "1", "--out", filepath.Join(t.TempDir(), "r.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "fp8 weights need the CUDA backend") {
		t.Errorf("fp8 on the CPU: %v", err)
	}
	_, _, err = lmdrive(t, "run", "--precision", "int4")
	if err == nil || !strings.Contains(err.Error(), `--precision "int4" is not one of fp32, fp16, bf16, int8, fp8`) {
		t.Errorf("bad precision: %v", err)
	}
}

func TestRunCommandModelFromCheckpoint(t *testing.T) {
	lib := refLibDir(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if _, _, err := lmdrive(t, "model", "init", "--preset", "tiny", "--seed", "3", "--out", dir, "--dtype", "bf16"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", dir, "--prompt-tokens", "16", "--max-new", "4",
		"--ignore-eos", "--warmup", "0", "--repeats", "1", "--out", filepath.Join(t.TempDir(), "r.jsonl"), "--label", "bf16 checkpoint")
	if err != nil || !strings.Contains(stdout, "| bf16 checkpoint | 0.016k->0.004k |") {
		t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
	}
}

func TestEnginesCommand(t *testing.T) {
	lib := refLibDir(t)
	stdout, _, err := lmdrive(t, "engines", "--lib-path", lib)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "ref") || !strings.Contains(stdout, "1.1") || !strings.Contains(stdout, "ref-cpu") {
		t.Fatalf("engines:\n%s", stdout)
	}
}

// TestRunHandsExactPromptLength checks that a 20000-token text prompt
// reaches the engine as exactly 20000 ids (the engine counts them itself).
func TestRunHandsExactPromptLength(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	_, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--engine-config", `{"calibrate": true}`,
		"--prompt-tokens", "20000", "--mix", "mixed", "--max-new", "4", "--warmup", "0", "--repeats", "1", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	recs, err := bench.ReadRecords(out)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v", err)
	}
	r := recs[0]
	if r.Prompt.Tokens != 20000 || r.Result.PromptTokens != 20000 || !strings.HasPrefix(r.Prompt.Hash, "sha256:") ||
		!strings.Contains(r.Prompt.Tokenizer, "sha256:") || r.Prompt.Source == "" {
		t.Fatalf("prompt %+v, engine saw %d tokens", r.Prompt, r.Result.PromptTokens)
	}
	if r.Overhead == nil || r.Overhead.Tokens != 20000 || r.Repro == nil || r.Repro.GoVersion == "" {
		t.Fatalf("overhead %+v repro %+v", r.Overhead, r.Repro)
	}
}

func TestQuietEngineLogIsNil(t *testing.T) {
	t.Setenv("LMDRIVE_QUIET_ENGINE", "1")
	if w := engineLog(nil); w != nil {
		t.Fatalf("quiet engine log is %#v; a non-nil writer would receive the engine's lines", w)
	}
}

func TestModelInitProgressLines(t *testing.T) {
	var sb strings.Builder
	p := newWriteProgress(&sb, "/data/m")
	for w := int64(0); w <= 1000; w += 10 {
		p.update(w, 1000)
	}
	lines := strings.Split(strings.TrimSpace(sb.String()), "\n")
	if len(lines) != 20 || !strings.HasPrefix(lines[0], "writing /data/m:   5% (50 B of 1.0 kB), ") || !strings.Contains(lines[19], " 100% (1.0 kB of 1.0 kB)") {
		t.Fatalf("progress:\n%s", sb.String())
	}
}
