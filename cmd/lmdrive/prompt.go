package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

func promptCommand() *cli.Command {
	return &cli.Command{
		Name:  "prompt",
		Usage: "build a prompt of an exact token length, as lmdrive run does",
		Description: "Synthesizes natural-looking text from a deterministic generator (or takes --prompt-file),\n" +
			"encodes it and cuts it to exactly --tokens ids. The text goes to standard output (or --out),\n" +
			"a summary line with the prompt-id hash to standard error.",
		Flags: append(tokenizerFlags(),
			&cli.IntFlag{Name: "tokens", Usage: "exact number of prompt tokens (with --prompt-file, 0 keeps the whole file)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the synthesized text"},
			&cli.StringFlag{Name: "mix", Value: prompt.MixMixed, Usage: "synthesized text: " + strings.Join(prompt.Mixes, ", ")},
			&cli.StringFlag{Name: "prompt-file", Usage: "use the text of `FILE` instead of synthesized text"},
			&cli.BoolFlag{Name: "chat-template", Usage: "wrap the text in Qwen's ChatML template; --tokens counts the template too"},
			&cli.BoolFlag{Name: "json", Usage: "print ids, text, hash and description as one JSON object"},
			&cli.StringFlag{Name: "out", Usage: "write the text (or JSON) to `FILE` instead of standard output"},
		),
		Action: func(c *cli.Context) error {
			tok, err := openTokenizer(c)
			if err != nil {
				return err
			}
			defer tok.Close()
			p, err := prompt.Build(tok, prompt.Spec{
				Tokens:       c.Int("tokens"),
				Seed:         c.Uint64("seed"),
				Mix:          c.String("mix"),
				TextFile:     c.String("prompt-file"),
				ChatTemplate: c.Bool("chat-template"),
			})
			if err != nil {
				return err
			}
			w := c.App.Writer
			if path := c.String("out"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("prompt: %w", err)
				}
				defer f.Close()
				w = f
			}
			if c.Bool("json") {
				err = writeJSON(w, struct {
					Tokens         int     `json:"tokens"`
					TemplateTokens int     `json:"template_tokens"`
					Hash           string  `json:"hash"`
					Description    string  `json:"description"`
					IDs            []int32 `json:"ids"`
					Text           string  `json:"text"`
				}{len(p.IDs), p.TemplateTokens, p.Hash, p.Description, p.IDs, p.Text})
			} else {
				_, err = fmt.Fprint(w, p.Text)
			}
			if err != nil {
				return fmt.Errorf("prompt: write: %w", err)
			}
			fmt.Fprintf(c.App.ErrWriter, "%d tokens, %s: %s\n", len(p.IDs), p.Hash, p.Description)
			return nil
		},
	}
}
