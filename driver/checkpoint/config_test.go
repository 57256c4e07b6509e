package checkpoint

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestDescribeReadsPresetsAndFolders(t *testing.T) {
	c, err := Describe("random:qwen2.5-7b")
	if err != nil || c.VocabSize != 152064 || c.MaxTokens() != 32768 || c.HeadDim != 128 {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := Describe("random:huge"); err == nil || !strings.Contains(err.Error(), `unknown preset "huge"`) {
		t.Fatalf("unknown preset: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	p, _ := LookupPreset("tiny")
	if err := Write(dir, p, Options{Seed: 1, Dtype: "bf16"}); err != nil {
		t.Fatal(err)
	}
	if c, err := Describe(dir); err != nil || c.VocabSize != 151936 || c.MaxPositions != 32768 || c.KVHeads != 2 {
		t.Fatalf("%+v, %v", c, err)
	}
	for _, m := range []string{"Qwen/Qwen2.5-7B", t.TempDir()} {
		if _, err := Describe(m); !errors.Is(err, ErrNoConfig) {
			t.Errorf("%s: %v", m, err)
		}
	}
	c, err = Describe(filepath.Join("..", "..", "testdata", "eos", "trtllm-engine"))
	if err != nil || c.VocabSize != 152064 || c.MaxInputLen != 10240 || c.MaxTokens() != 10800 {
		t.Fatalf("TensorRT-LLM engine folder: %+v, %v", c, err)
	}
}

// Shape errors are named by their keys, before any engine reads a tensor.
func TestParseConfigNamesShapeErrors(t *testing.T) {
	base := `"vocab_size": 100, "hidden_size": 100, "num_attention_heads": 3`
	cases := []struct{ json, want string }{
		{`{` + base + `}`, "hidden_size (100) is not divisible by num_attention_heads (3), and there is no head_dim"},
		{`{` + base + `, "head_dim": 33}`, "head_dim 33) is odd"},
		{`{` + base + `, "head_dim": 32, "num_key_value_heads": 2}`, "num_attention_heads (3) is not a multiple of num_key_value_heads (2)"},
		{`{"hidden_size": 0, "num_attention_heads": 2}`, "hidden_size is 0"},
		{`{"vocab_size": -5}`, `"vocab_size" is -5; it must be a non-negative integer`},
		{`{"max_position_embeddings": "long"}`, `"max_position_embeddings" is "long"`},
		{`[1, 2]`, "is not a JSON object"},
		{`null`, "is not a JSON object"},
		{`{"build_config": 3}`, "build_config is not a JSON object"},
	}
	for _, tc := range cases {
		_, err := ParseConfig([]byte(tc.json), "m/config.json")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "m/config.json") {
			t.Errorf("%s: %v; want %q", tc.json, err, tc.want)
		}
	}
	if c, err := ParseConfig([]byte(`{`+base+`, "head_dim": 32, "num_key_value_heads": 1}`), "x"); err != nil || c.HeadDim != 32 {
		t.Fatalf("an explicit head_dim makes the shape valid: %+v %v", c, err)
	}
}
