package main

import (
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

// workloadPromptFlags are the prompt flags shared by run and eos.
func workloadPromptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "prompt-source", Value: "text", Usage: "text: tokenized text (synthesized, or --prompt-file); ids: random token ids, no tokenizer"},
		&cli.StringFlag{Name: "mix", Value: prompt.MixMixed, Usage: "synthesized text: " + strings.Join(prompt.Mixes, ", ")},
		&cli.StringFlag{Name: "prompt-file", Usage: "use the text of `FILE`, cut to --prompt-tokens"},
		&cli.BoolFlag{Name: "chat-template", Usage: "wrap the text in Qwen's ChatML template (counted in --prompt-tokens)"},
		&cli.StringFlag{Name: "tokenizer", Usage: "Hugging Face tokenizer.json `FILE` (default: the built-in Qwen2.5 tokenizer)"},
		&cli.StringFlag{Name: "tokenizer-backend", Value: tokenize.BackendAuto, Usage: "auto, hf or go"},
	}
}

// promptMaker builds the prompts of a workload from the flags.
type promptMaker struct {
	c   *cli.Context
	tok tokenize.Tokenizer // nil until needed
}

func (p *promptMaker) tokenizer() (tokenize.Tokenizer, error) {
	if p.tok == nil {
		tok, err := tokenize.Open(p.c.String("tokenizer"), p.c.String("tokenizer-backend"))
		if err != nil {
			return nil, err
		}
		p.tok = tok
	}
	return p.tok, nil
}

// prompt builds an exact-length prompt for seed, refusing ids the engine's
// vocabulary does not have.
func (p *promptMaker) prompt(tokens int, seed uint64, vocab int) (bench.Prompt, error) {
	switch src := p.c.String("prompt-source"); src {
	case "ids":
		return bench.RandomPrompt(tokens, vocab, seed)
	case "text":
	default:
		return bench.Prompt{}, fmt.Errorf("--prompt-source %q: want text or ids", src)
	}
	tok, err := p.tokenizer()
	if err != nil {
		return bench.Prompt{}, err
	}
	built, err := prompt.Build(tok, prompt.Spec{Tokens: tokens, Seed: seed, Mix: p.c.String("mix"),
		TextFile: p.c.String("prompt-file"), ChatTemplate: p.c.Bool("chat-template")})
	if err != nil {
		return bench.Prompt{}, err
	}
	for i, id := range built.IDs {
		if int(id) >= vocab {
			return bench.Prompt{}, fmt.Errorf("prompt token %d at position %d is outside the engine's vocabulary of %d: use the model's own tokenizer (--tokenizer) or --prompt-source ids", id, i, vocab)
		}
	}
	info := tok.Info()
	return bench.Prompt{IDs: built.IDs, Tokens: len(built.IDs), Hash: built.Hash, Source: built.Description,
		Tokenizer: fmt.Sprintf("%s %s sha256:%s", info.Backend, info.Source, info.SHA256)}, nil
}

// piece decodes one id for reports, or "" without a tokenizer.
func (p *promptMaker) piece(id int32) string {
	tok, err := p.tokenizer()
	if err != nil {
		return ""
	}
	s, err := tok.Decode([]int32{id})
	if err != nil {
		return ""
	}
	return s
}

func (p *promptMaker) Close() {
	if p.tok != nil {
		p.tok.Close()
	}
}
