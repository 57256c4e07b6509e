package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
)

// A small sweep on the reference engine, end to end: one model loads once
// for its workloads, a model that cannot load is an error row and the sweep
// goes on (exit 4), running it again resumes (skips what is done), the
// digest, CSV, HTML page and comparison all read the file.
func TestSweepEndToEnd(t *testing.T) {
	lib := refLibDir(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.jsonl")
	plan := filepath.Join(dir, "plan.yaml")
	os.WriteFile(plan, []byte(`
name: e2e
repeats: 2
warmup: 0
prompt: {source: ids}
models: [random:tiny, random:no-such-preset]
engines:
  - engine: ref
    device: cpu
workloads:
  - {prompt: 32, gen: 4}
  - {prompt: 64, gen: 6}
`), 0o644)
	stdout, stderr, err := lmdrive(t, "sweep", "--lib-path", lib, "--out", out, "--progress", "lines", plan)
	var es exitStatus
	if !errors.As(err, &es) || es.code != 4 || !strings.Contains(err.Error(), "2 of 4 cells failed") {
		t.Fatalf("exit %v\n%s", err, stderr)
	}
	if n := strings.Count(stderr, "loading ref (random:tiny)"); n != 1 {
		t.Errorf("random:tiny loaded %d times for its two cells:\n%s", n, stderr)
	}
	for _, want := range []string{"sweep: 4 cells to run", "cell 1/4: ref tp=1 random:tiny 0.032k->0.004k", "repeat 2/2: first token after",
		"cell 3/4 failed after", "4 cells run, 2 failed, 0 skipped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	for _, want := range []string{"# lmdrive benchmark digest: e2e", "### tiny (random weights)", "| ref (cpu, tp=1, ignore_eos) | 0.032k->0.004k |",
		"### no-such-preset (random weights)", "| — | — | — | failed: open ref for random:no-such-preset:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("digest lacks %q:\n%s", want, stdout)
		}
	}
	recs, err := bench.ReadRecords(out)
	if err != nil || len(recs) != 6 || recs[0].Sweep == nil || recs[0].Sweep.Plan != "e2e" {
		t.Fatalf("%d records, %v", len(recs), err)
	}

	// Again: the two complete cells are skipped, the failed ones retried.
	_, stderr, _ = lmdrive(t, "sweep", "--lib-path", lib, "--out", out, "--quiet", plan)
	if !strings.Contains(stderr, "2 of 4 cells are done") || !strings.Contains(stderr, "2 cells run, 2 failed, 2 skipped") || strings.Contains(stderr, "repeat 1/2") {
		t.Fatalf("resume:\n%s", stderr)
	}
	list, _, err := lmdrive(t, "sweep", "--out", out, "--list", "--shard", "0/2", plan)
	if err != nil || !strings.Contains(list, "✓   0 ref tp=1 random:tiny 0.032k->0.004k") || !strings.Contains(list, "2 cells of 4 in this share, 2 done, 0 to run") {
		t.Fatalf("list: %v\n%s", err, list)
	}

	// The same file through report's formats and page, and compare.
	csv, _, err := lmdrive(t, "report", "--format", "csv", "--model", "tiny", "--engine", "ref", out)
	if err != nil || strings.Count(csv, "\n") != 3 || !strings.HasPrefix(csv, "date,precision,model,label") {
		t.Fatalf("csv: %v\n%s", err, csv)
	}
	page := filepath.Join(dir, "page", "digest.html")
	_, stderr, err = lmdrive(t, "report", "--html", page, "--plots", filepath.Join(dir, "svg"), out)
	if err != nil || !strings.Contains(stderr, "page with 2 tables and 3 plots written") {
		t.Fatalf("html: %v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(page); !strings.Contains(string(b), "<svg") {
		t.Fatal("the page holds no plot")
	}
	cmp, _, err := lmdrive(t, "compare", out, out)
	if err != nil || !strings.Contains(cmp, "ref (cpu, tp=1, ignore_eos) · tiny (random weights) FP32 · 0.032k->0.004k") || !strings.Contains(cmp, "output ids: identical") {
		t.Fatalf("compare: %v\n%s", err, cmp)
	}
	if _, _, err := lmdrive(t, "report", "--since", "yesterday", out); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("bad --since: %v", err)
	}
	if _, _, err := lmdrive(t, "report", "--run", "nope", out); err == nil || !strings.Contains(err.Error(), "passes the filters") {
		t.Fatalf("filters: %v", err)
	}
}

// A damaged line is skipped with a warning naming it; the report goes on.
func TestReportToleratesDamage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.jsonl")
	good := `{"schema":"lmdrive.result/v1","run_id":"a","time":"2026-12-05T10:00:00Z","status":"ok","label":"x","workload":{"model":"random:tiny","max_new_tokens":4},"prompt":{"tokens":8},"metrics":{"output_tokens":4,"runtime_s":0.5,"tok_s":8}}`
	os.WriteFile(out, []byte(good+"\n{\"schema\":\"lmdrive.res\n"+good+"\n"), 0o644)
	stdout, stderr, err := lmdrive(t, "report", out)
	if err != nil || !strings.Contains(stderr, "warning: "+out+" line 2 skipped") || !strings.Contains(stdout, "median of 2") {
		t.Fatalf("%v\n%s\n%s", err, stderr, stdout)
	}
}

// lmdrive run takes comma lists: every prompt length with every output
// length, on the one loaded engine.
func TestRunCommaLists(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	stdout, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--prompt-source", "ids", "--prompt-tokens", "16,32", "--max-new", "2,3",
		"--warmup", "0", "--repeats", "1", "--quiet", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"| 0.016k->0.002k |", "| 0.016k->0.003k |", "| 0.032k->0.002k |", "| 0.032k->0.003k |", "4 records appended",
		"no warmup: every repeat here was cold"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("run lacks %q:\n%s", want, stdout)
		}
	}
	if stderr != "" {
		t.Errorf("--quiet printed:\n%s", stderr)
	}
	if _, _, err := lmdrive(t, "run", "--max-new", "800,x"); err == nil || !strings.Contains(err.Error(), `--max-new must be at least 1: "x"`) {
		t.Fatalf("bad list: %v", err)
	}
}

func TestImportCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "imported.jsonl")
	stdout, _, err := lmdrive(t, "import", "--from", "trtllm-bench", "--out", out, "../../bench/importer/testdata/trtllm-report.json")
	if err != nil || !strings.Contains(stdout, "| TensorRT-LLM trtllm-bench (tp=2) | 10k->0.8k | 16.93 | 47.25 | 800 |") || !strings.Contains(stdout, "1 imported records appended") {
		t.Fatalf("%v\n%s", err, stdout)
	}
	md, _, err := lmdrive(t, "report", out)
	if err != nil || !strings.Contains(md, "imported from trtllm-bench report (") {
		t.Fatalf("%v\n%s", err, md)
	}
	if _, _, err := lmdrive(t, "import", "--from", "genai-perf", "x.json"); err == nil || !strings.Contains(err.Error(), "want vllm-bench or trtllm-bench") {
		t.Fatalf("bad tool: %v", err)
	}
}

// docs/digest-example.md is generated: it must be exactly what lmdrive
// report makes of the results file beside it (docs/plans/h200-digest.sh
// writes both on a GPU host).
func TestDigestExampleIsGenerated(t *testing.T) {
	md, err := os.ReadFile("../../docs/digest-example.md")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("docs/digest-example.md not made yet (bash docs/plans/h200-digest.sh on a GPU host)")
	}
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(md), "\n")
	stdout, stderr, err := lmdrive(t, "report", "--title", strings.TrimPrefix(first, "# "), "../../docs/digest-example/results.jsonl")
	if err != nil || stdout != string(md) {
		t.Fatalf("docs/digest-example.md differs from its report (%v, %s); run docs/plans/h200-digest.sh again", err, stderr)
	}
}
