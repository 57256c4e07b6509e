package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench/report"
)

// The fixtures in testdata follow the formats the tools write (docs/import.md
// names the source files); their numbers are made up.

func TestVLLMLatency(t *testing.T) {
	// Alone, the latency JSON does not say the lengths.
	dir := t.TempDir()
	lone := filepath.Join(dir, "lat.json")
	b, _ := os.ReadFile("testdata/vllm-latency.json")
	os.WriteFile(lone, b, 0o644)
	if _, err := Read(VLLM, lone, Options{}); err == nil || !strings.Contains(err.Error(), "give --prompt-tokens and --max-new") {
		t.Fatalf("lengths unknown: %v", err)
	}
	recs, err := Read(VLLM, lone, Options{PromptTokens: 10000, MaxNew: 800, TP: 2})
	if err != nil || len(recs) != 5 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	// Beside its .pytorch.json sibling the arguments come from there.
	recs, err = Read(VLLM, "testdata/vllm-latency.json", Options{})
	if err != nil || len(recs) != 5 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	r := recs[2]
	if r.Imported == nil || r.Imported.From != "vllm bench latency" || r.Imported.File != "vllm-latency.json" || r.Prompt.Tokens != 10000 ||
		r.Workload.MaxNew != 800 || r.Engine.TPSize != 2 || r.Engine.Dtype != "fp16" || r.Workload.Model != "Qwen/Qwen2.5-14B-Instruct" ||
		r.Metrics.RuntimeS != 12.0103 || r.Workload.Warmup != 2 || r.Schema == "" || r.RunID == "" || r.Workload.Repeats != 5 {
		t.Fatalf("record %+v %+v", r, r.Metrics)
	}
	if r.Imported.Definitions["runtime_s"] == "" || !strings.Contains(r.Imported.Definitions["output_tokens"], "does not report") {
		t.Fatalf("definitions %v", r.Imported.Definitions)
	}
	// In the digest: its own table, median of 5 with an interval, the
	// source and its definitions in the notes.
	row := report.Build(recs, report.Options{}).Tables[0].Rows[0]
	notes := strings.Join(row.Notes, "; ")
	if row.Model != "Qwen/Qwen2.5-14B-Instruct" || row.Precision != "fp16" || row.Stats.Runtime.Median != 11.9877 ||
		!strings.Contains(notes, "imported from vllm bench latency (") || !strings.Contains(notes, "load not measured") || strings.Contains(notes, "cold") {
		t.Fatalf("row %+v\n%s", row, notes)
	}
}

func TestVLLMServe(t *testing.T) {
	recs, err := Read(VLLM, "testdata/vllm-serve.json", Options{MaxNew: 1000})
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	r := recs[0]
	if r.Status != "ok" || r.Metrics.TTFTS != 1.742 || r.Metrics.RuntimeS != 32.91 || r.Metrics.OutputTokens != 1000 || r.Prompt.Tokens != 20000 ||
		r.Metrics.ITLms.Max != 42 || r.Metrics.ITLms.P50 != 31.3 || r.Time.Year() != 2026 || r.Label != "vLLM bench serve (vllm)" {
		t.Fatalf("request 0: %+v %+v", r, r.Metrics)
	}
	if recs[3].Status != "error" || !strings.Contains(recs[3].Error, "prompt too long") {
		t.Fatalf("failed request %+v", recs[3])
	}
	row := report.Build(recs, report.Options{}).Rows()[0]
	notes := strings.Join(row.Notes, "; ")
	if row.Status != "partial" || !strings.Contains(notes, "1 of 4 repeats failed: vllm bench serve: Bad Request: prompt too long") ||
		!strings.Contains(notes, "1 of 3 repeats stopped early (at 513 of 1000) (the records hold no engine result to name the cause)") {
		t.Fatalf("notes %s", notes)
	}
}

func TestTRTLLM(t *testing.T) {
	recs, err := Read(TRTLLM, "testdata/trtllm-report.json", Options{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	r := recs[0]
	if !r.Imported.Aggregate || r.Imported.Requests != 5 || r.Metrics.RuntimeS != 16.93 || r.Metrics.TTFTS != 1.27 || r.Metrics.TokPerS != 47.25 ||
		r.Metrics.DecodeTokPerS != 51.02 || r.Engine.TPSize != 2 || r.Engine.Dtype != "fp16" || r.Engine.Version != "0.21.0" || r.Prompt.Tokens != 10000 {
		t.Fatalf("report record %+v %+v", r, r.Metrics)
	}
	row := report.Build(recs, report.Options{}).Rows()[0]
	if !strings.Contains(strings.Join(row.Notes, ";"), "averages of 5 requests as the tool reported them: no interval") {
		t.Fatalf("notes %q", row.Notes)
	}
	recs, err = Read(TRTLLM, "testdata/trtllm-requests.json", Options{TP: 2, Precision: "fp16", Model: "Qwen/Qwen2.5-14B-Instruct", MaxNew: 800})
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if m := recs[1].Metrics; m.RuntimeS != 16.88 || m.TTFTS != 1.26 || m.OutputTokens != 800 || m.ITLms.P50 < 19.54 || m.ITLms.P50 > 19.56 {
		t.Fatalf("request 1 %+v", m)
	}
}

func TestImportRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"a.json": `{"hello": 1}`, "b.json": `not json`, "c.json": `[]`} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		for _, tool := range Tools {
			if _, err := Read(tool, path, Options{}); err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %s: %v", tool, name, err)
			}
		}
	}
	if _, err := Read("aiperf", "testdata/vllm-serve.json", Options{}); err == nil || !strings.Contains(err.Error(), "want vllm-bench or trtllm-bench") {
		t.Errorf("unknown tool: %v", err)
	}
}
