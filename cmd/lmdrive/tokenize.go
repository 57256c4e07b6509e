package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/urfave/cli/v2"
)

// inputText is the single argument, or standard input when there is none.
func inputText(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		data, err := io.ReadAll(c.App.Reader)
		if err != nil {
			return "", fmt.Errorf("read standard input: %w", err)
		}
		return string(data), nil
	case 1:
		return c.Args().First(), nil
	}
	return "", errors.New("give the text as one argument (quote it) or on standard input")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func tokenizeCommand() *cli.Command {
	withJSON := func(usage string) []cli.Flag {
		return append(tokenizerFlags(), &cli.BoolFlag{Name: "json", Usage: usage})
	}
	return &cli.Command{
		Name:  "tokenize",
		Usage: "encode text to token ids, decode ids to text, count tokens",
		Subcommands: []*cli.Command{
			{
				Name:      "encode",
				Usage:     "print the token ids of the text (no special tokens added)",
				ArgsUsage: "[TEXT]  (default: standard input)",
				Flags:     withJSON("print {\"ids\": [...], \"count\": N, \"hash\": \"sha256:...\"}"),
				Action: func(c *cli.Context) error {
					text, err := inputText(c)
					if err != nil {
						return err
					}
					tok, err := openTokenizer(c)
					if err != nil {
						return err
					}
					defer tok.Close()
					ids, err := tok.Encode(text)
					if err != nil {
						return fmt.Errorf("encode: %w", err)
					}
					if c.Bool("json") {
						return writeJSON(c.App.Writer, struct {
							IDs   []int32 `json:"ids"`
							Count int     `json:"count"`
							Hash  string  `json:"hash"`
						}{ids, len(ids), tokenize.HashIDs(ids)})
					}
					parts := make([]string, len(ids))
					for i, id := range ids {
						parts[i] = fmt.Sprint(id)
					}
					_, err = fmt.Fprintln(c.App.Writer, strings.Join(parts, " "))
					return err
				},
			},
			{
				Name:      "decode",
				Usage:     "print the text of token ids (special tokens shown)",
				ArgsUsage: "[ID...]  (default: standard input; a JSON array or numbers separated by spaces or commas)",
				Flags:     withJSON("print {\"text\": \"...\"}, exact to the byte"),
				Action: func(c *cli.Context) error {
					raw := strings.Join(c.Args().Slice(), " ")
					if c.NArg() == 0 {
						data, err := io.ReadAll(c.App.Reader)
						if err != nil {
							return fmt.Errorf("read standard input: %w", err)
						}
						raw = string(data)
					}
					ids, err := tokenize.ParseIDs(raw)
					if err != nil {
						return err
					}
					tok, err := openTokenizer(c)
					if err != nil {
						return err
					}
					defer tok.Close()
					text, err := tok.Decode(ids)
					if err != nil {
						return fmt.Errorf("decode: %w", err)
					}
					if c.Bool("json") {
						return writeJSON(c.App.Writer, struct {
							Text string `json:"text"`
						}{text})
					}
					_, err = fmt.Fprintln(c.App.Writer, text)
					return err
				},
			},
			{
				Name:      "count",
				Usage:     "print the number of tokens in the text",
				ArgsUsage: "[TEXT]  (default: standard input)",
				Flags:     withJSON("print {\"count\": N}"),
				Action: func(c *cli.Context) error {
					text, err := inputText(c)
					if err != nil {
						return err
					}
					tok, err := openTokenizer(c)
					if err != nil {
						return err
					}
					defer tok.Close()
					n, err := tok.Count(text)
					if err != nil {
						return fmt.Errorf("count: %w", err)
					}
					if c.Bool("json") {
						return writeJSON(c.App.Writer, struct {
							Count int `json:"count"`
						}{n})
					}
					_, err = fmt.Fprintln(c.App.Writer, n)
					return err
				},
			},
		},
	}
}
