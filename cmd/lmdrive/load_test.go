package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
)

// Bad load flags are refused with a line that names the flag, before any
// engine loads.
func TestRunRefusesBadLoadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--batch", "4", "--concurrency", "2"}, "--batch and --concurrency are different load modes"},
		{[]string{"--request-rate", "2"}, "--requests 0"},
		{[]string{"--request-rate", "0", "--requests", "4"}, "--request-rate 0"},
		{[]string{"--request-rate", "2", "--requests", "4", "--arrival", "bursty"}, `--arrival "bursty"`},
		{[]string{"--requests", "4"}, "--requests belongs to a load mode"},
		{[]string{"--batch", "2", "--requests", "4"}, "--requests does not apply to --batch"},
		{[]string{"--concurrency", "2", "--arrival", "constant"}, "apply to --request-rate only"},
		{[]string{"--batch", "2", "--goodput-ttft", "0s"}, "goodput target"},
	} {
		_, _, err := lmdrive(t, append([]string{"run", "--lib-path", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.args, err, tc.want)
		}
	}
}

// The README's load command lines, end to end on the reference engine (with
// the library folder, one measured repeat and a results file added): every
// request is recorded, then the summary, and the table shows a row per
// level; the saved records render again with `lmdrive report`.
func TestLoadModesEndToEnd(t *testing.T) {
	lib := refLibDir(t)
	out := filepath.Join(t.TempDir(), "load.jsonl")
	common := []string{"run", "--lib-path", lib, "--warmup", "1", "--repeats", "1", "--out", out}
	for _, tc := range []struct {
		args     []string
		requests int
		row      string
	}{
		{strings.Fields("--batch 32 --prompt-tokens 128 --max-new 16 --ignore-eos"), 32, "| batch=32 | 0.128k->0.016k | 32 |"},
		{strings.Fields("--concurrency 16 --requests 200 --prompt-tokens 64 --max-new 8 --ignore-eos"), 200, "| concurrency=16 requests=200 | 0.064k->0.008k | 200 |"},
		{strings.Fields("--request-rate 200 --requests 40 --arrival constant --prompt-tokens 64 --max-new 8 --ignore-eos"), 40, "| rate=200/s constant requests=40 |"},
	} {
		stdout, stderr, err := lmdrive(t, append(common, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr)
		}
		if !strings.Contains(stdout, tc.row) || !strings.Contains(stdout, fmt.Sprintf("%d records appended", tc.requests+1)) {
			t.Fatalf("%v: stdout lacks %q:\n%s", tc.args, tc.row, stdout)
		}
	}
	recs, err := bench.ReadRecords(out)
	if err != nil || len(recs) != 32+200+40+3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	batch := recs[:33]
	for i, r := range batch[:32] {
		if r.Kind != bench.KindRequest || r.Status != "ok" || r.Request.Index != i || r.Metrics.OutputTokens != 16 || r.Result.MaxBatch != 32 {
			t.Fatalf("batch request %d: %+v", i, r)
		}
	}
	if s := batch[32].Summary; batch[32].Kind != bench.KindLoad || s.Completed != 32 || s.DecodeTokPerS <= 0 || s.TTFTS.N != 32 {
		t.Fatalf("batch summary %+v", s)
	}
	if recs[33].Prompt.Hash == recs[34].Prompt.Hash {
		t.Fatal("requests share a prompt without --same-prompt")
	}
	md, _, err := lmdrive(t, "report", out)
	if err != nil || strings.Count(md, "| ref (ref-cpu, random:tiny, ignore_eos) |") != 3 {
		t.Fatalf("report: %v\n%s", err, md)
	}
	// A batch larger than the engine runs at once is refused with the limit.
	_, _, err = lmdrive(t, append(common, "--batch", "9", "--engine-config", `{"max_batch": 8}`, "--prompt-source", "ids", "--prompt-tokens", "8", "--max-new", "2")...)
	if err == nil || !strings.Contains(err.Error(), "a batch of 9 requests exceeds the 8 generations") {
		t.Fatalf("batch over the limit: %v", err)
	}
}
