package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver/pyenvtest"
)

var prompt = []int32{9707, 11, 1879, 0, 220, 101, 3923, 5023}

// TestPythonEngines runs the suite against engine hf (transformers for real,
// on the CPU) and against the vllm, lmdeploy and trtllm-py adapters on the
// fakes of their libraries (driver/pyworker/tests/fakes), which implement
// the API surface the adapters use with each library's own behaviour.
func TestPythonEngines(t *testing.T) {
	py := pyenvtest.Interpreter(t, true)
	t.Run("hf", func(t *testing.T) {
		RunPython(t, PythonTarget{Engine: "hf", Python: py, Prompt: prompt,
			Config: map[string]any{"model": "random:tiny-untied", "seed": 2, "threads": 1}})
	})
	fakes, _ := filepath.Abs(filepath.Join("..", "pyworker", "tests", "fakes"))
	model := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"model_type": "qwen2", "vocab_size": 151936, "max_position_embeddings": 4096, "eos_token_id": 151645})
	os.WriteFile(filepath.Join(model, "config.json"), cfg, 0o644)
	env := []string{"PYTHONPATH=" + fakes}
	for _, tg := range []PythonTarget{
		{Engine: "vllm", MaxSeqKey: "max_model_len"},
		{Engine: "lmdeploy", MaxSeqKey: "session_len", StopIDsDroppedUnderIgnoreEOS: true},
		{Engine: "trtllm-py", MaxSeqKey: "max_seq_len", StopIDsDroppedUnderIgnoreEOS: true},
	} {
		t.Run(tg.Engine+" (fake library)", func(t *testing.T) {
			tg.Python, tg.Env, tg.Prompt, tg.Config = py, env, prompt, map[string]any{"model": model}
			tg.BatchInvariant = true // the fakes' tokens depend on the prompt's length and the step only
			RunPython(t, tg)
		})
	}
}

// TestOtherPythonEngines runs the suite against real libraries named in
// LMDRIVE_CONFORMANCE_PY: a JSON list of PythonTarget objects, for example
//
//	[{"Engine":"vllm","Python":"/opt/vllm/bin/python","Config":{"model":"/models/Qwen2.5-0.5B-Instruct"},
//	  "Prompt":[9707,11,1879],"MaxSeqKey":"max_model_len"}]
func TestOtherPythonEngines(t *testing.T) {
	spec := os.Getenv("LMDRIVE_CONFORMANCE_PY")
	if strings.TrimSpace(spec) == "" {
		t.Skip("set LMDRIVE_CONFORMANCE_PY to a JSON list of targets to check Python engines on their real libraries")
	}
	var targets []PythonTarget
	if err := json.Unmarshal([]byte(spec), &targets); err != nil {
		t.Fatalf("LMDRIVE_CONFORMANCE_PY is not a JSON list of targets: %v", err)
	}
	for _, tg := range targets {
		t.Run(tg.Engine, func(t *testing.T) { RunPython(t, tg) })
	}
}
