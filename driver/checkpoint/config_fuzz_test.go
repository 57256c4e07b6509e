package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig reads arbitrary bytes as config.json: never a panic, and
// a config it accepts has a consistent shape (what the engines rely on).
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"../../testdata/eos/qwen2.5-instruct/config.json", "../../testdata/eos/trtllm-engine/config.json"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"vocab_size": 100, "hidden_size": 100, "num_attention_heads": 3}`,
		`{"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 3, "head_dim": 16}`,
		`{"pretrained_config": {"vocab_size": 5}, "build_config": {"max_input_len": 9, "max_seq_len": 10}}`,
		`{"max_position_embeddings": 1e99}`, `{"vocab_size": -1}`, `null`, `[]`, `{"build_config": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "config.json")
		if err != nil {
			return
		}
		if c.Heads > 0 && c.KVHeads > 0 && c.Heads%c.KVHeads != 0 || c.HeadDim%2 != 0 || c.MaxTokens() < 0 || c.VocabSize < 0 {
			t.Fatalf("accepted an inconsistent shape: %+v", c)
		}
	})
}
