package main

import (
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/driver/checkpoint"
	"github.com/urfave/cli/v2"
)

func modelCommand() *cli.Command {
	return &cli.Command{
		Name:  "model",
		Usage: "make and list random Qwen2 checkpoints",
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "write a deterministic random checkpoint in Hugging Face format (transformers loads it as Qwen2ForCausalLM)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "preset", Required: true, Usage: "model shape: " + strings.Join(checkpoint.Presets(), ", ")},
					&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random weights (the ref engine's random:<preset> with this seed has the same weights)"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "folder to create (must be empty or absent)"},
					&cli.StringFlag{Name: "dtype", Value: "fp32", Usage: "fp32, fp16 or bf16"},
				},
				Action: func(c *cli.Context) error {
					p, err := checkpoint.LookupPreset(c.String("preset"))
					if err != nil {
						return err
					}
					if err := checkpoint.Write(c.String("out"), p, checkpoint.Options{Seed: c.Uint64("seed"), Dtype: c.String("dtype")}); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %s: preset %s, seed %d, %s, %.3g parameters\n",
						c.String("out"), p.Name, c.Uint64("seed"), c.String("dtype"), float64(p.Parameters()))
					return nil
				},
			},
			{
				Name:  "presets",
				Usage: "list the model shapes random:<preset> and model init know",
				Action: func(c *cli.Context) error {
					w := c.App.Writer
					fmt.Fprintf(w, "%-14s %8s %7s %7s %6s %6s %4s %6s %9s\n", "preset", "vocab", "hidden", "inter", "layers", "heads", "kv", "tied", "params")
					for _, name := range checkpoint.Presets() {
						p, _ := checkpoint.LookupPreset(name)
						fmt.Fprintf(w, "%-14s %8d %7d %7d %6d %6d %4d %6t %8.3gB\n", p.Name, p.Vocab, p.Hidden, p.Intermediate,
							p.Layers, p.Heads, p.KVHeads, p.Tied, float64(p.Parameters())/1e9)
					}
					return nil
				},
			},
		},
	}
}
