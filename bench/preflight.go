package bench

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lmdrive/lmdrive/driver/checkpoint"
	"github.com/lmdrive/lmdrive/tokenize"
)

// Preflight is what can be checked before an engine loads, when a mistake
// still costs nothing: the model's shape and length limits read from its
// files, the lengths to be run against them, and the tokenizer against the
// model's vocabulary.
type Preflight struct {
	Engine string
	// Model is --model: random:<preset> or a folder with config.json.
	// Anything else (an engine-specific name) is not checked.
	Model string
	// EngineConfig is the engine's JSON config; the ref engine's
	// max_seq_len there overrides the model's limit.
	EngineConfig json.RawMessage
	PromptTokens int // 0: not checked
	MaxNew       int
	// Tokenizer, if not nil, is compared with the model's vocabulary.
	Tokenizer tokenize.Tokenizer
}

// Check returns an error for what cannot work, and warnings (one line each)
// for what will run differently than asked.
func (p Preflight) Check() (warnings []string, err error) {
	cfg, err := checkpoint.Describe(p.Model)
	if errors.Is(err, checkpoint.ErrNoConfig) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--model %s: %w", p.Model, err)
	}
	limit, from := cfg.MaxTokens(), "max_position_embeddings of "+cfg.Source
	if cfg.MaxSeqLen > 0 {
		from = "max_seq_len in the build_config of " + cfg.Source
	}
	if n := p.engineMaxSeqLen(); n > 0 {
		limit, from = n, "max_seq_len in --engine-config"
	}
	if limit > 0 && p.PromptTokens > 0 {
		maxInput := limit - 1 // room for at least one generated token
		if cfg.MaxInputLen > 0 && cfg.MaxInputLen < maxInput && from != "max_seq_len in --engine-config" {
			maxInput, from = cfg.MaxInputLen, "max_input_len in the build_config of "+cfg.Source
		}
		if p.PromptTokens > maxInput {
			msg := fmt.Sprintf("--prompt-tokens %d does not fit: the model takes at most %d prompt tokens (%s)", p.PromptTokens, maxInput, from)
			if p.Engine == "ref" {
				msg += fmt.Sprintf("; give --prompt-tokens %d or less, or raise the ref engine's limit with --engine-config '{\"max_seq_len\": %d}'",
					maxInput, p.PromptTokens+max(p.MaxNew, 1))
			}
			return nil, errors.New(msg)
		}
		if p.MaxNew > 0 && p.PromptTokens+p.MaxNew > limit {
			warnings = append(warnings, fmt.Sprintf("%d prompt + %d new tokens exceed the limit of %d (%s): generation will stop after %d tokens",
				p.PromptTokens, p.MaxNew, limit, from, limit-p.PromptTokens))
		}
	}
	if p.Tokenizer != nil && cfg.VocabSize > 0 {
		warnings = append(warnings, vocabularyWarnings(p.Tokenizer, cfg)...)
	}
	return warnings, nil
}

// engineMaxSeqLen is the ref engine's max_seq_len from its config, if set.
func (p Preflight) engineMaxSeqLen() int {
	if p.Engine != "ref" || len(p.EngineConfig) == 0 {
		return 0
	}
	var cfg struct {
		MaxSeqLen int `json:"max_seq_len"`
	}
	if json.Unmarshal(p.EngineConfig, &cfg) != nil {
		return 0
	}
	return cfg.MaxSeqLen
}

// minVocabCoverage is the share of a model's vocabulary below which a
// tokenizer is probably another model's: a model's own tokenizer covers
// nearly all of it (Qwen2.5's 151,665 tokens of 151,936 or 152,064 rows;
// the rest is padding).
const minVocabCoverage = 0.9

func vocabularyWarnings(tok tokenize.Tokenizer, cfg checkpoint.Config) []string {
	have, rows := tok.VocabSize(), cfg.VocabSize
	name := tok.Info().Source
	switch {
	case have > rows:
		return []string{fmt.Sprintf("the tokenizer (%s) has %d tokens but the model (%s) only %d rows of vocabulary: a prompt id of %d or more will be refused; use the model's own tokenizer (--tokenizer)",
			name, have, cfg.Source, rows, rows)}
	case float64(have) < minVocabCoverage*float64(rows):
		return []string{fmt.Sprintf("the tokenizer (%s) has %d tokens, %.0f%% of the model's %d (%s): it is probably another model's tokenizer, and the prompt will not be text this model knows; use the model's own tokenizer (--tokenizer)",
			name, have, 100*float64(have)/float64(rows), rows, cfg.Source)}
	}
	return nil
}
