package bench

import (
	"fmt"
	"slices"

	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
)

// Prompt sources: tokenized text, or random token ids that need no tokenizer.
const (
	SourceText = "text"
	SourceIDs  = "ids"
)

// PromptOptions say how a workload's prompts are made.
type PromptOptions struct {
	Source       string // SourceText or SourceIDs
	Mix          string // synthesized text mix (prompt.Mixes)
	TextFile     string // text to cut to length instead of synthesized text
	ChatTemplate bool   // wrap the text in Qwen's ChatML template
	Tokenizer    string // tokenizer.json path; "" is the built-in Qwen2.5 tokenizer
	Backend      string // tokenizer backend: auto, hf or go
}

// Validate checks the options that need no tokenizer.
func (o PromptOptions) Validate() error {
	switch o.Source {
	case SourceText, SourceIDs:
	default:
		return fmt.Errorf("--prompt-source %q: want %s or %s", o.Source, SourceText, SourceIDs)
	}
	if o.Source == SourceText && o.Mix != "" && !slices.Contains(prompt.Mixes, o.Mix) {
		return fmt.Errorf("--mix %q: want one of %v", o.Mix, prompt.Mixes)
	}
	return nil
}

// PromptMaker builds exact-length prompts. Its tokenizer opens on first use
// (or at Open, to fail before an engine loads) and is shared by every prompt.
type PromptMaker struct {
	opts PromptOptions
	tok  tokenize.Tokenizer
}

// NewPromptMaker checks the options; it opens nothing yet.
func NewPromptMaker(o PromptOptions) (*PromptMaker, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &PromptMaker{opts: o}, nil
}

// Tokenizer opens the tokenizer if it is not open yet.
func (p *PromptMaker) Tokenizer() (tokenize.Tokenizer, error) {
	if p.tok == nil {
		tok, err := tokenize.Open(p.opts.Tokenizer, p.opts.Backend)
		if err != nil {
			return nil, err
		}
		p.tok = tok
	}
	return p.tok, nil
}

// Make builds a prompt of exactly tokens ids for seed, refusing ids that
// the engine's vocabulary does not have.
func (p *PromptMaker) Make(tokens int, seed uint64, vocab int) (Prompt, error) {
	if p.opts.Source == SourceIDs {
		return RandomPrompt(tokens, vocab, seed)
	}
	tok, err := p.Tokenizer()
	if err != nil {
		return Prompt{}, err
	}
	built, err := prompt.Build(tok, prompt.Spec{Tokens: tokens, Seed: seed, Mix: p.opts.Mix,
		TextFile: p.opts.TextFile, ChatTemplate: p.opts.ChatTemplate})
	if err != nil {
		return Prompt{}, err
	}
	for i, id := range built.IDs {
		if int(id) >= vocab {
			return Prompt{}, fmt.Errorf("prompt token %d at position %d is outside the engine's vocabulary of %d: use the model's own tokenizer (--tokenizer) or --prompt-source ids", id, i, vocab)
		}
	}
	info := tok.Info()
	return Prompt{IDs: built.IDs, Tokens: len(built.IDs), Hash: built.Hash, Source: built.Description,
		Tokenizer: fmt.Sprintf("%s %s sha256:%s", info.Backend, info.Source, info.SHA256)}, nil
}

// Piece decodes one id for reports, or "" without a tokenizer.
func (p *PromptMaker) Piece(id int32) string {
	tok, err := p.Tokenizer()
	if err != nil {
		return ""
	}
	s, err := tok.Decode([]int32{id})
	if err != nil {
		return ""
	}
	return s
}

// Close releases the tokenizer.
func (p *PromptMaker) Close() {
	if p.tok != nil {
		p.tok.Close()
		p.tok = nil
	}
}
