package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
	"github.com/lmdrive/lmdrive/driver/pyenvtest"
)

// The ref and hf engines, run by the same command line on the same prompt,
// land in one results file and one report, with identical greedy tokens.
func TestRunEngineHFBesideRef(t *testing.T) {
	lib := refLibDir(t)
	py := pyenvtest.Interpreter(t, true)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	common := []string{"--model", "random:tiny-untied", "--seed", "3", "--prompt-tokens", "96", "--max-new", "16", "--ignore-eos",
		"--warmup", "0", "--repeats", "1", "--threads", "1", "--out", out}
	for _, engine := range []string{"ref", "hf"} {
		args := append([]string{"run", "--engine", engine, "--lib-path", lib, "--python", py}, common...)
		if _, stderr, err := lmdrive(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", engine, err, stderr)
		}
	}
	recs, err := bench.ReadRecords(out)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	ref, hf := recs[0], recs[1]
	if ref.Prompt.Hash != hf.Prompt.Hash || !slices.Equal(ref.Output.IDs, hf.Output.IDs) {
		t.Fatalf("same prompt %v, tokens\nref %v\nhf  %v", ref.Prompt.Hash == hf.Prompt.Hash, ref.Output.IDs, hf.Output.IDs)
	}
	if hf.Engine.Backend != "transformers" || hf.Engine.Versions["torch"] == "" || len(hf.Engine.Config) == 0 ||
		len(hf.Result.Config) == 0 || hf.Overhead == nil || !strings.Contains(hf.Overhead.Path, "hf adapter") {
		t.Fatalf("hf record lacks versions, effective config or overhead: %+v", hf.Engine)
	}
	stdout, _, err := lmdrive(t, "report", out)
	if err != nil || !strings.Contains(stdout, "| ref (ref-cpu") || !strings.Contains(stdout, "| hf (transformers") {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
}

// lmdrive eos drives engine hf: a prompt that ends in <|im_end|> makes
// random:tiny emit it at once, which the decision tree names with the
// probability transformers' logits gave it.
func TestEosOnEngineHF(t *testing.T) {
	py := pyenvtest.Interpreter(t, true)
	ids := filepath.Join(t.TempDir(), "prompt.json")
	os.WriteFile(ids, []byte(`[9707, 11, 1879, 151645]`), 0o644)
	args := []string{"--engine", "hf", "--python", py, "--model", "random:tiny", "--threads", "1", "--max-new", "16", "--prompt-ids", ids}
	rep, out, err := eosReport(t, args...)
	wantVerdict(t, rep, out, err, eos.CauseModelEOS, "151645", "P(stop ids) at the last step")
	rep, out, err = eosReport(t, append(args, "--ignore-eos")...)
	wantVerdict(t, rep, out, err, eos.CauseOK)
}

// lmdrive eos through the lmdeploy adapter, on the test fake of LMDeploy's
// pipeline (driver/pyworker/tests/fakes): the KV cache lowers session_len
// to 128, LMDeploy calls the cut end "length", and the report names the
// limit with the engine's own log line as evidence.
func TestEosNamesLMDeploySessionLenClamp(t *testing.T) {
	py := pyenvtest.Interpreter(t, true)
	fakes, _ := filepath.Abs(filepath.Join("..", "..", "driver", "pyworker", "tests", "fakes"))
	t.Setenv("PYTHONPATH", fakes)
	model := t.TempDir()
	os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"model_type": "qwen2", "vocab_size": 151936,
		"max_position_embeddings": 32768, "eos_token_id": 151645, "lmdrive_fake": {"kv_session_len": 128}}`), 0o644)
	rep, out, err := eosReport(t, "--engine", "lmdeploy", "--python", py, "--model", model, "--prompt-source", "ids",
		"--prompt-tokens", "64", "--max-new", "200", "--ignore-eos")
	wantVerdict(t, rep, out, err, eos.CauseContextClamp, "session_len=128 (effective, read back after loading)",
		"max_new_tokens is truncated to 64", "(prompt 64 + generated 64)")
}

// lmdrive engines lists the Python engines, with the library version found
// for the interpreter or the pip command.
func TestEnginesListsPythonEngines(t *testing.T) {
	py := pyenvtest.Interpreter(t, true)
	stdout, _, err := lmdrive(t, "engines", "--python", py)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hf ", "transformers 5.", "vllm is not installed for " + py + " (pip install vllm, or --python)", "trtllm-py"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("engines lacks %q:\n%s", want, stdout)
		}
	}
}
