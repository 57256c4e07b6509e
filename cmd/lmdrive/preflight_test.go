package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Mistakes that need no engine are reported before one loads: here the
// library folder is empty, so any error about the engine library means the
// check came too late.
func TestMistakesAreFoundBeforeLoading(t *testing.T) {
	t.Setenv("LMDRIVE_LIB_PATH", "") // make test points it at the built library
	noLib := t.TempDir()
	out := filepath.Join(t.TempDir(), "r.jsonl")
	common := []string{"--lib-path", noLib}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--prompt-tokens", "40000"}, "--prompt-tokens 40000 does not fit: the model takes at most 32767 prompt tokens"},
		{[]string{"run", "--prompt-tokens", "200", "--engine-config", `{"max_seq_len": 100}`}, "at most 99 prompt tokens"},
		{[]string{"run", "--tokenizer", "nope.json"}, "nope.json"},
		{[]string{"run", "--mix", "klingon"}, `--mix "klingon"`},
		{[]string{"run", "--tokenizer-backend", "rust"}, `unknown tokenizer backend "rust"`},
		{[]string{"run", "--model", "random:qwen3"}, `unknown preset "qwen3"`},
		{[]string{"run", "--gpus", "0,x"}, "--gpus"},
		{[]string{"run", "--sample-interval", "-1s"}, "--sample-interval -1s"},
		{[]string{"run", "--stall-timeout", "-1s"}, "--stall-timeout -1s is negative"},
		{[]string{"run", "--threads", "-2"}, "--threads -2 is negative"},
		{[]string{"run", "--prompt-tokens", "99999999"}, "--prompt-tokens 99999999: give 1 to"},
		{[]string{"eos", "--prompt-tokens", "40000"}, "--prompt-tokens 40000 does not fit"},
		{[]string{"eos", "--tokenizer", "nope.json"}, "nope.json"},
	}
	for _, tc := range cases {
		args := append(tc.args, common...)
		if tc.args[0] == "run" {
			args = append(args, "--out", out)
		}
		_, stderr, err := lmdrive(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(stderr, "loading ") {
			t.Errorf("%v: error %v; want %q before loading\n%s", tc.args, err, tc.want, stderr)
		}
	}
}

// A tokenizer that does not fit the model is warned about before loading.
func TestTokenizerOfAnotherModelIsWarnedAbout(t *testing.T) {
	t.Setenv("LMDRIVE_LIB_PATH", "")
	_, stderr, err := lmdrive(t, "run", "--lib-path", t.TempDir(), "--tokenizer", filepath.Join("..", "..", "testdata", "tokenizer", "tiny-bpe.json"),
		"--out", filepath.Join(t.TempDir(), "r.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "no library for engine") {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(stderr, "warning: the tokenizer (") || !strings.Contains(stderr, "has 263 tokens, 0% of the model's 151936 (random:tiny): it is probably another model's tokenizer") {
		t.Fatalf("stderr:\n%s", stderr)
	}
}

// A prompt longer than the loaded engine's own limit is refused before
// prefill, with the limit the engine reported.
func TestPromptLongerThanTheEngineTakesIsRefusedBeforePrefill(t *testing.T) {
	lib := refLibDir(t)
	// The model folder says nothing before loading (the engine config names
	// the real model), so only the engine knows its limit.
	model := filepath.Join(t.TempDir(), "my-tiny")
	os.Mkdir(model, 0o755)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	_, stderr, err := lmdrive(t, "run", "--lib-path", lib, "--model", model, "--engine-config", `{"model": "random:tiny", "max_seq_len": 64}`,
		"--prompt-tokens", "100", "--prompt-source", "ids", "--max-new", "2", "--warmup", "0", "--repeats", "1", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "a prompt of 100 tokens is longer than the 63 the engine takes (its max_input_len, reported after loading "+model+")") {
		t.Fatalf("error %v\n%s", err, stderr)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatalf("a refused prompt left a results file: %v", serr)
	}
}
