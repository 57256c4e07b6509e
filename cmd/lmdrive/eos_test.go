package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
)

// greedyTokens runs the ref engine once and returns the generated ids, read
// back from the results file.
func greedyTokens(t *testing.T, lib string, n int) []int32 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.jsonl")
	if _, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny-untied", "--prompt-tokens", "64",
		"--max-new", fmt.Sprint(n), "--ignore-eos", "--warmup", "0", "--repeats", "1", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	recs, err := bench.ReadRecords(out)
	if err != nil || len(recs) != 1 {
		t.Fatal(err)
	}
	return recs[0].Output.IDs
}

func eosReport(t *testing.T, args ...string) (eos.Report, string, error) {
	t.Helper()
	js := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, err := lmdrive(t, append(append([]string{"eos"}, args...), "--json", js)...)
	var rep eos.Report
	if b, rerr := os.ReadFile(js); rerr == nil {
		json.Unmarshal(b, &rep)
	} else if err == nil {
		t.Fatalf("no report written: %v\n%s", rerr, stderr)
	}
	return rep, stdout, err
}

func wantVerdict(t *testing.T, rep eos.Report, stdout string, err error, cause string, mentions ...string) {
	t.Helper()
	var es exitStatus
	if cause == eos.CauseOK {
		if err != nil {
			t.Fatalf("want success, got %v\n%s", err, stdout)
		}
	} else if !errors.As(err, &es) || es.code != 3 {
		t.Fatalf("want exit status 3, got %v\n%s", err, stdout)
	}
	if len(rep.Samples) == 0 || rep.Samples[0].Verdict.Cause != cause {
		t.Fatalf("want %s:\n%s", cause, stdout)
	}
	for _, m := range mentions {
		if !strings.Contains(stdout, m) {
			t.Errorf("report lacks %q:\n%s", m, stdout)
		}
	}
}

func TestEosOnTheReferenceEngine(t *testing.T) {
	lib := refLibDir(t)
	seq := greedyTokens(t, lib, 12)
	k := 6
	id := fmt.Sprint(seq[k])
	common := []string{"--lib-path", lib, "--model", "random:tiny-untied", "--prompt-tokens", "64", "--max-new", "32"}

	t.Run("full length", func(t *testing.T) {
		rep, out, err := eosReport(t, append(common, "--ignore-eos")...)
		wantVerdict(t, rep, out, err, eos.CauseOK)
	})
	t.Run("stop id left active under ignore_eos", func(t *testing.T) {
		rep, out, err := eosReport(t, append(common, "--ignore-eos", "--stop", id, "--control")...)
		wantVerdict(t, rep, out, err, eos.CauseStopSetNotCleared, "STOP_SET_NOT_CLEARED", "request stop sequence 0",
			"control forced-length: with min_new_tokens=32 the engine produces 32 tokens")
	})
	t.Run("length clamp", func(t *testing.T) {
		rep, out, err := eosReport(t, append(common, "--ignore-eos", "--engine-config", `{"max_seq_len": 80}`)...)
		wantVerdict(t, rep, out, err, eos.CauseContextClamp, "max_seq_len=80", "predicted cap: 16 of 32")
	})
	t.Run("model eos", func(t *testing.T) {
		rep, out, err := eosReport(t, append(common, "--engine-config", fmt.Sprintf(`{"eos_ids": [%s]}`, id))...)
		wantVerdict(t, rep, out, err, eos.CauseModelEOS, "engine eos", "P(stop ids) at the last step")
	})
	t.Run("eos ids inside the prompt", func(t *testing.T) {
		ids := filepath.Join(t.TempDir(), "prompt.json")
		os.WriteFile(ids, []byte(`[9707, 151643, 11, 151645, 1879, 151643]`), 0o644)
		args := []string{"--lib-path", lib, "--model", "random:tiny-untied", "--max-new", "32", "--prompt-ids", ids}
		// A first pass tells which token this prompt makes the model emit at step 5.
		first, out, err := eosReport(t, append(args, "--ignore-eos")...)
		wantVerdict(t, first, out, err, eos.CauseOK)
		stopID := first.Samples[0].Output[5]
		rep, out, err := eosReport(t, append(args, "--engine-config", fmt.Sprintf(`{"eos_ids": [%d, 151643, 151645]}`, stopID))...)
		wantVerdict(t, rep, out, err, eos.CauseModelEOS, "the prompt holds stop/EOS ids: 151643 at position 1, 151645 at position 3")
	})
	t.Run("cancelled", func(t *testing.T) {
		// Random prompt ids: no tokenizer to open before the engine loads,
		// so the deadline falls in the generation on a busy machine too.
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		var out bytes.Buffer
		js := filepath.Join(t.TempDir(), "r.json")
		t.Setenv("LMDRIVE_QUIET_ENGINE", "1")
		err := run(ctx, []string{"lmdrive", "eos", "--lib-path", lib, "--model", "random:tiny", "--prompt-tokens", "8",
			"--prompt-source", "ids", "--max-new", "10000000", "--ignore-eos", "--json", js}, &out, &out)
		var rep eos.Report
		b, _ := os.ReadFile(js)
		json.Unmarshal(b, &rep)
		wantVerdict(t, rep, out.String(), err, eos.CauseAborted, "cancelled")
	})
}

// TestEosExplainsSavedRecords runs a clamped benchmark, then explains it from
// the results file alone.
func TestEosExplainsSavedRecords(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	if _, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--prompt-tokens", "100", "--max-new", "40",
		"--ignore-eos", "--engine-config", `{"max_seq_len": 120}`, "--warmup", "0", "--repeats", "1", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	stdout, _, err := lmdrive(t, "eos", "--record", out)
	var es exitStatus
	if !errors.As(err, &es) || es.code != 3 || !strings.Contains(stdout, "CONTEXT_CLAMP") || !strings.Contains(stdout, "(prompt 100 + generated 20)") {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if _, _, err := lmdrive(t, "eos", "--record", filepath.Join(t.TempDir(), "none.jsonl")); err == nil {
		t.Fatal("a missing results file was accepted")
	}
}

// eos opens engines as run does: in this process too, with the same result.
func TestEosInProcess(t *testing.T) {
	lib := refLibDir(t)
	rep, out, err := eosReport(t, "--lib-path", lib, "--model", "random:tiny", "--prompt-tokens", "32", "--max-new", "40",
		"--ignore-eos", "--engine-config", `{"max_seq_len": 60}`, "--in-process")
	wantVerdict(t, rep, out, err, eos.CauseContextClamp)
	if _, _, err := lmdrive(t, "eos", "--lib-path", lib, "--stall-timeout", "-1s"); err == nil || !strings.Contains(err.Error(), "--stall-timeout -1s is negative") {
		t.Fatalf("negative timeout: %v", err)
	}
}

// Two runs in one results file, each explained with its own settings.
func TestEosRecordExplainsEachRunWithItsSettings(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	for _, cfg := range []string{`{"max_seq_len": 120}`, `{}`} {
		if _, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", "random:tiny", "--prompt-tokens", "100", "--max-new", "40",
			"--ignore-eos", "--engine-config", cfg, "--warmup", "0", "--repeats", "1", "--out", out); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	js := filepath.Join(t.TempDir(), "reports.json")
	stdout, _, err := lmdrive(t, "eos", "--record", out, "--json", js)
	var es exitStatus
	if !errors.As(err, &es) || es.code != 3 {
		t.Fatalf("want exit 3: %v\n%s", err, stdout)
	}
	var reps []eos.Report
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &reps); err != nil || len(reps) != 2 {
		t.Fatalf("want two reports: %v\n%s", err, b)
	}
	if c := reps[0].Samples[0].Verdict.Cause; c != eos.CauseContextClamp {
		t.Errorf("clamped run: %s", c)
	}
	if c := reps[1].Samples[0].Verdict.Cause; c != eos.CauseOK || reps[1].Audit.PredictedCap != 40 {
		t.Errorf("full run judged %s with cap %d (the first run's settings leaked?)", c, reps[1].Audit.PredictedCap)
	}
}
