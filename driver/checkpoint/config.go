package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config is what a model says about its shape and length limits before any
// engine loads it: a random:<preset>, or the config.json of a Hugging Face
// checkpoint or of a compiled engine folder (TensorRT-LLM writes its model
// under "pretrained_config" and its limits under "build_config"). Zero
// means the file does not say.
type Config struct {
	Source       string // the file or preset it was read from
	VocabSize    int
	Hidden       int
	Heads        int
	KVHeads      int
	HeadDim      int
	MaxPositions int // max_position_embeddings
	// Limits a compiled engine was built with.
	MaxInputLen int
	MaxSeqLen   int
}

// ErrNoConfig means the model names neither a preset nor a folder with a
// config.json: nothing can be checked before an engine loads it.
var ErrNoConfig = errors.New("no config.json to read")

// Describe reads the shape and limits of a model as lmdrive names it:
// random:<preset>, or a folder holding config.json. A config.json whose
// shape cannot work is an error that names the keys at fault.
func Describe(model string) (Config, error) {
	if name, ok := strings.CutPrefix(model, "random:"); ok {
		p, err := LookupPreset(name)
		if err != nil {
			return Config{}, err
		}
		return Config{Source: model, VocabSize: p.Vocab, Hidden: p.Hidden, Heads: p.Heads, KVHeads: p.KVHeads,
			HeadDim: p.HeadDim(), MaxPositions: p.MaxPositions}, nil
	}
	st, err := os.Stat(model)
	if err != nil || !st.IsDir() {
		return Config{}, ErrNoConfig
	}
	path := filepath.Join(model, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, ErrNoConfig
	}
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(b, path)
}

// ParseConfig reads config.json bytes; source names the file in errors.
func ParseConfig(b []byte, source string) (Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		if err == nil {
			err = errors.New("it is null")
		}
		return Config{}, fmt.Errorf("%s is not a JSON object: %v", source, err)
	}
	c := Config{Source: source}
	model := top
	if pc, ok := top["pretrained_config"]; ok {
		if err := json.Unmarshal(pc, &model); err != nil || model == nil {
			return Config{}, fmt.Errorf("%s: pretrained_config is not a JSON object", source)
		}
	}
	type intKey struct {
		from map[string]json.RawMessage
		key  string
		dst  *int
	}
	ints := []intKey{
		{model, "vocab_size", &c.VocabSize}, {model, "hidden_size", &c.Hidden}, {model, "num_attention_heads", &c.Heads},
		{model, "num_key_value_heads", &c.KVHeads}, {model, "head_dim", &c.HeadDim},
		{model, "max_position_embeddings", &c.MaxPositions},
	}
	if bc, ok := top["build_config"]; ok {
		var build map[string]json.RawMessage
		if err := json.Unmarshal(bc, &build); err != nil || build == nil {
			return Config{}, fmt.Errorf("%s: build_config is not a JSON object", source)
		}
		ints = append(ints, intKey{build, "max_input_len", &c.MaxInputLen}, intKey{build, "max_seq_len", &c.MaxSeqLen})
	}
	for _, f := range ints {
		raw, ok := f.from[f.key]
		if !ok || string(raw) == "null" {
			continue
		}
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil || v < 0 || v > 1<<31-1 {
			return Config{}, fmt.Errorf("%s: %q is %s; it must be a non-negative integer", source, f.key, shorten(raw))
		}
		*f.dst = int(v)
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if err := c.checkShape(model); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkShape names the inconsistencies an engine would otherwise report
// indirectly (a wrong tensor size) or not at all.
func (c *Config) checkShape(keys map[string]json.RawMessage) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", c.Source, fmt.Sprintf(format, args...))
	}
	_, hasHidden := keys["hidden_size"]
	_, hasHeads := keys["num_attention_heads"]
	if hasHidden && c.Hidden == 0 {
		return bad("hidden_size is 0")
	}
	if hasHeads && c.Heads == 0 {
		return bad("num_attention_heads is 0")
	}
	if c.Heads > 0 && c.KVHeads > 0 && c.Heads%c.KVHeads != 0 {
		return bad("num_attention_heads (%d) is not a multiple of num_key_value_heads (%d): each key/value head must serve a whole group of query heads",
			c.Heads, c.KVHeads)
	}
	if c.HeadDim == 0 && c.Hidden > 0 && c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return bad("hidden_size (%d) is not divisible by num_attention_heads (%d), and there is no head_dim to say the head size",
				c.Hidden, c.Heads)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.HeadDim%2 != 0 {
		return bad("the head size (head_dim %d) is odd; rotary position embeddings need an even one", c.HeadDim)
	}
	return nil
}

func shorten(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// MaxTokens is the length limit of a sequence (prompt and generated tokens)
// the model's files state: a compiled engine's max_seq_len, else the
// model's max_position_embeddings; 0 when neither is known.
func (c Config) MaxTokens() int {
	if c.MaxSeqLen > 0 {
		return c.MaxSeqLen
	}
	return c.MaxPositions
}
