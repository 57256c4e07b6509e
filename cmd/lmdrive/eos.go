package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/eos"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

func eosCommand() *cli.Command {
	flags := append(append(engineFlags(), modelFlags()...), promptFlags(512)...)
	flags = append(flags,
		&cli.StringFlag{Name: "prompt-ids", Usage: "JSON file with the prompt as an array of token ids (instead of a generated prompt)"},
		&cli.IntFlag{Name: "max-new", Value: 800, Usage: "tokens requested"},
		&cli.BoolFlag{Name: "ignore-eos", Usage: "request ignore_eos"},
		&cli.IntFlag{Name: "min-new", Usage: "min_new_tokens of the request"},
		&cli.StringSliceFlag{Name: "stop", Usage: "a stop sequence as space-separated token ids; repeat for more"},
		&cli.IntFlag{Name: "samples", Value: 1, Usage: "prompts to try (seed, seed+1, …)"},
		&cli.BoolFlag{Name: "control", Usage: "also run each early sample with EOS on and with the length forced (min_new_tokens)"},
		&cli.StringFlag{Name: "model-dir", Usage: "Hugging Face folder to audit (default: --model when it is a folder)"},
		&cli.StringFlag{Name: "engine-config-file", Usage: "the engine's config to audit: TensorRT-LLM engine config.json, LMDeploy config.yaml/config.ini, or their folder"},
		&cli.StringFlag{Name: "steps", Usage: "write per-step records (JSON Lines) here"},
		&cli.StringFlag{Name: "json", Usage: "write the report as JSON here (--record: a JSON array, one report per run)"},
		&cli.StringSliceFlag{Name: "compare", Usage: "compare two saved reports: --compare A.json --compare B.json"},
		&cli.StringFlag{Name: "record", Usage: "explain the runs saved in a results file (lmdrive run --out) instead of running anything"},
	)
	return &cli.Command{
		Name:  "eos",
		Usage: "say exactly why a generation stopped before --max-new",
		Description: `Audits every token id and length limit that can end the request (model and
engine config files), runs the request with EOS log-probabilities watched at every
step, names the cause with a decision tree and lists the evidence. Exits 3 when a
sample stopped early. --compare A.json --compare B.json aligns two saved reports.

Examples:
  lmdrive eos --prompt-tokens 256 --max-new 64 --ignore-eos --stop 151645 --json /tmp/a.json
  lmdrive eos --prompt-tokens 256 --max-new 64 --engine-config '{"max_seq_len": 300}' --json /tmp/b.json
  lmdrive eos --compare /tmp/a.json --compare /tmp/b.json
  lmdrive eos --record /tmp/r.jsonl`,
		Flags:  flags,
		Action: eosAction,
	}
}

func eosAction(c *cli.Context) error {
	if cmp := c.StringSlice("compare"); len(cmp) > 0 {
		return compareReports(c, cmp)
	}
	if path := c.String("record"); path != "" {
		return explainRecords(c, path)
	}
	stops, err := parseStops(c.StringSlice("stop"))
	if err != nil {
		return err
	}
	if c.Int("samples") < 1 {
		return fmt.Errorf("--samples must be at least 1")
	}
	open, err := openOptions(c)
	if err != nil {
		return err
	}
	log := &eos.LogBuffer{}
	open.Log = log
	maker, err := bench.NewPromptMaker(promptOptions(c))
	if err != nil {
		return err
	}
	defer maker.Close()
	if err := eosPreflight(c, open, maker); err != nil {
		return err
	}
	eng, err := driver.Open(c.Context, open)
	if err != nil {
		return err
	}
	defer eng.Close()
	if open.InProcess {
		log = nil // the engine writes to this process's stderr: no log evidence
	}
	prompts, err := eosPrompts(c, maker, eng.Info().VocabSize)
	if err != nil {
		return err
	}
	modelDir := c.String("model-dir")
	if st, err := os.Stat(c.String("model")); modelDir == "" && err == nil && st.IsDir() {
		modelDir = c.String("model")
	}
	inv := eos.Investigation{
		Engine:  open.Engine,
		Request: driver.Request{MaxNewTokens: c.Int("max-new"), MinNewTokens: c.Int("min-new"), IgnoreEOS: c.Bool("ignore-eos"), StopSequences: stops},
		Prompts: prompts, Audit: eos.AuditInput{ModelDir: modelDir, EngineConfig: c.String("engine-config-file")},
		Control: c.Bool("control"), Piece: maker.Piece,
		Warn: func(w string) { fmt.Fprintf(c.App.ErrWriter, "warning before running: %s\n", w) },
	}
	if p := c.String("steps"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("--steps: %w", err)
		}
		defer f.Close()
		inv.Steps = f
	}
	report, pieces, err := eos.Investigate(c.Context, eng, log, inv)
	if err != nil {
		return err
	}
	report.WriteText(c.App.Writer, pieces)
	if err := saveJSON(c.String("json"), report); err != nil {
		return err
	}
	return earlyStatus(report.Early(), "a sample stopped early")
}

// explainRecords explains the runs saved by lmdrive run, each with its own settings.
func explainRecords(c *cli.Context, path string) error {
	recs, err := bench.ReadRecordsTolerant(path, warner(c))
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	maker, err := bench.NewPromptMaker(promptOptions(c))
	if err != nil {
		return err
	}
	defer maker.Close()
	reports, pieces, err := eos.ExplainRecords(recs, eos.AuditInput{ModelDir: c.String("model-dir"), EngineConfig: c.String("engine-config-file")}, maker.Piece)
	if err != nil {
		return fmt.Errorf("--record %s: %w", path, err)
	}
	early := false
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(c.App.Writer)
		}
		fmt.Fprintf(c.App.Writer, "run %s\n", r.Run)
		r.WriteText(c.App.Writer, pieces)
		early = early || r.Early()
	}
	if err := saveJSON(c.String("json"), reports); err != nil {
		return err
	}
	return earlyStatus(early, "a recorded run stopped early")
}

// earlyStatus is exit status 3 when a run stopped early.
func earlyStatus(early bool, what string) error {
	if early {
		return exitStatus{code: 3, err: errors.New(what + " (exit status 3)")}
	}
	return nil
}

// saveJSON writes v to path, indented; "" writes nothing.
func saveJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}

// eosPreflight checks the model, the lengths and the tokenizer before the
// engine loads. A request longer than the model's limit is only a warning:
// that is one of the causes eos is there to show.
func eosPreflight(c *cli.Context, open driver.OpenOptions, maker *bench.PromptMaker) error {
	if c.Int("prompt-tokens") < 1 || c.Int("prompt-tokens") > prompt.MaxTokens {
		return fmt.Errorf("--prompt-tokens %d: give 1 to %d", c.Int("prompt-tokens"), prompt.MaxTokens)
	}
	if c.Int("max-new") < 1 {
		return fmt.Errorf("--max-new must be at least 1")
	}
	pre := bench.Preflight{Engine: open.Engine, Model: c.String("model"), EngineConfig: open.Config, MaxNew: c.Int("max-new")}
	if c.String("prompt-ids") == "" {
		pre.PromptTokens = c.Int("prompt-tokens")
		if promptOptions(c).Source == bench.SourceText {
			tok, err := maker.Tokenizer()
			if err != nil {
				return err
			}
			pre.Tokenizer = tok
		}
	}
	warnings, err := pre.Check()
	for _, w := range warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning before running: %s\n", w)
	}
	return err
}

func eosPrompts(c *cli.Context, maker *bench.PromptMaker, vocab int) ([]bench.Prompt, error) {
	if path := c.String("prompt-ids"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--prompt-ids: %w", err)
		}
		var ids []int32
		if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("--prompt-ids %s must hold a non-empty JSON array of token ids", path)
		}
		return []bench.Prompt{{IDs: ids, Tokens: len(ids), Hash: tokenize.HashIDs(ids), Source: "ids from " + path}}, nil
	}
	var out []bench.Prompt
	for i := range c.Int("samples") {
		p, err := maker.Make(c.Int("prompt-tokens"), c.Uint64("seed")+uint64(i), vocab)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseStops(specs []string) ([][]int32, error) {
	var out [][]int32
	for _, s := range specs {
		var seq []int32
		for _, f := range strings.Fields(s) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("--stop %q: %q is not a token id (give ids separated by spaces)", s, f)
			}
			seq = append(seq, int32(id))
		}
		if len(seq) == 0 {
			return nil, fmt.Errorf("--stop %q is empty", s)
		}
		out = append(out, seq)
	}
	return out, nil
}

func compareReports(c *cli.Context, files []string) error {
	if len(files) != 2 {
		return fmt.Errorf("--compare takes exactly two reports (saved with --json), got %d: --compare A.json --compare B.json", len(files))
	}
	var reps [2]eos.Report
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--compare: %w", err)
		}
		if err := json.Unmarshal(b, &reps[i]); err != nil {
			return fmt.Errorf("--compare: %s is not an eos report: %w", f, err)
		}
	}
	eos.CompareReports(c.App.Writer, reps[0], reps[1])
	return nil
}
