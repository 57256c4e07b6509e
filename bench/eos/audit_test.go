package eos

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var fixtures = filepath.Join("..", "..", "testdata", "eos")

func TestAuditQwenInstruct(t *testing.T) {
	a, err := RunAudit(AuditInput{ModelDir: filepath.Join(fixtures, "qwen2.5-instruct"), PromptTokens: 10000, MaxNew: 800})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32][]string{
		151645: {"config.json eos_token_id", "generation_config.json eos_token_id", "tokenizer_config.json eos_token", "chat template stop word"},
		151643: {"generation_config.json eos_token_id"},
	}
	if len(a.Universe) != len(want) {
		t.Fatalf("universe %+v", a.Universe)
	}
	for _, s := range a.Universe {
		for _, src := range want[s.ID] {
			if !slices.Contains(s.Sources, src) {
				t.Errorf("id %d: sources %v lack %q", s.ID, s.Sources, src)
			}
		}
	}
	if a.Universe[1].Piece != "<|im_end|>" {
		t.Errorf("151645 piece = %q", a.Universe[1].Piece)
	}
	if a.PredictedCap != 800 || a.Binding != "" {
		t.Errorf("cap %d bound by %q; 10000+800 fits 32768", a.PredictedCap, a.Binding)
	}
}

func TestAuditLMDeployKVLimit(t *testing.T) {
	// 168 blocks × 64 tokens = 10752: with a 10240-token prompt only 512 fit.
	a, err := RunAudit(AuditInput{ModelDir: filepath.Join(fixtures, "qwen2.5-instruct"),
		EngineConfig: filepath.Join(fixtures, "lmdeploy-workspace"), PromptTokens: 10240, MaxNew: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if a.PredictedCap != 512 || !strings.HasPrefix(a.Binding, "kv_session_len=10752") {
		t.Fatalf("cap %d bound by %q; want 512 by kv_session_len=10752", a.PredictedCap, a.Binding)
	}
	if len(a.Warnings) == 0 || !strings.Contains(a.Warnings[len(a.Warnings)-1], "at most 512 of the 1000") {
		t.Fatalf("warnings %v", a.Warnings)
	}
}

func TestAuditTensorRTEngine(t *testing.T) {
	a, err := RunAudit(AuditInput{EngineConfig: filepath.Join(fixtures, "trtllm-engine"), PromptTokens: 10500, MaxNew: 800})
	if err != nil {
		t.Fatal(err)
	}
	if a.PredictedCap != 300 || !strings.HasPrefix(a.Binding, "max_seq_len=10800") {
		t.Fatalf("cap %d bound by %q", a.PredictedCap, a.Binding)
	}
	if !strings.Contains(strings.Join(a.Warnings, "\n"), "exceeds max_input_len=10240") {
		t.Fatalf("no max_input_len warning: %v", a.Warnings)
	}
}

func TestAuditBadFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), "{not json")
	if _, err := RunAudit(AuditInput{ModelDir: dir}); err == nil || !strings.Contains(err.Error(), "config.json is not valid JSON") {
		t.Fatalf("bad config.json: %v", err)
	}
	if _, err := RunAudit(AuditInput{EngineConfig: filepath.Join(dir, "engine.toml")}); err == nil || !strings.Contains(err.Error(), ".yaml or .ini") {
		t.Fatalf("unknown engine config type: %v", err)
	}
	if _, err := RunAudit(AuditInput{EngineConfig: filepath.Join(dir, "missing.json")}); err == nil {
		t.Fatal("missing engine config: no error")
	}
	// A folder with nothing of interest is fine: nothing to learn.
	a, err := RunAudit(AuditInput{ModelDir: t.TempDir(), PromptTokens: 5, MaxNew: 10})
	if err != nil || a.PredictedCap != 10 {
		t.Fatalf("empty folder: %+v, %v", a, err)
	}
}

func TestScanLog(t *testing.T) {
	log := `[TM][WARNING] [ProcessInferRequests] [7] total sequence length (10240 + 1000) exceeds session_len (10752), max_new_tokens is truncated to 512
INFO session=1, input_tokens=10240, max_new_tokens=512
[TensorRT-LLM][WARNING] Number of requested output tokens (1000) exceeds maximum sequence length (10800). Number of requested output tokens is changed to (560).
nothing here`
	hits := ScanLog(log)
	var names []string
	for _, h := range hits {
		names = append(names, h.Pattern)
	}
	want := []string{"session_len_clamp", "lmdeploy_request_config", "trt_output_clamp"}
	if !slices.Equal(names, want) {
		t.Fatalf("hits %v, want %v", names, want)
	}
}
