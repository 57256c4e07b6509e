// Package sweep runs a plan: a matrix of engines × models × precisions ×
// tensor-parallel sizes × batch sizes × prompt/generation lengths, one
// cell at a time, loading each model once for all the cells that share it,
// recording every cell (a failure too) so that a sweep can be resumed and
// split into deterministic shards for an existing scheduler.
package sweep

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
)

// Plan is a sweep plan as written in its YAML file (docs/sweep.md).
type Plan struct {
	// Name identifies the plan in every record it produces.
	Name string `yaml:"name"`
	// Out is the results file; "" is results/<name>.jsonl.
	Out     string `yaml:"out"`
	Repeats int    `yaml:"repeats"`
	// Warmup is the unrecorded runs before each cell's repeats (default 1).
	Warmup *int `yaml:"warmup"`
	// IgnoreEOS asks engines not to stop at EOS (default true: the digest
	// compares full-length generations).
	IgnoreEOS *bool      `yaml:"ignore_eos"`
	Seed      uint64     `yaml:"seed"`
	Prompt    PromptSpec `yaml:"prompt"`
	Engines   []Engine   `yaml:"engines"`
	Models    []string   `yaml:"models"`
	Precision []string   `yaml:"precision"`
	TP        []int      `yaml:"tp"`
	Batch     []int      `yaml:"batch"`
	// Workloads are prompt → generation pairs, as the digest lists them
	// (an engine entry may give its own).
	Workloads []Workload `yaml:"workloads"`
}

// PromptSpec says how prompts are made (the run command's prompt flags).
type PromptSpec struct {
	Source           string `yaml:"source"` // text (default) or ids
	Mix              string `yaml:"mix"`
	File             string `yaml:"file"`
	ChatTemplate     bool   `yaml:"chat_template"`
	Tokenizer        string `yaml:"tokenizer"`
	TokenizerBackend string `yaml:"tokenizer_backend"`
}

// Engine is one engine entry; its lists (models, precision, tp, workloads),
// when given, replace the plan's.
type Engine struct {
	Engine string `yaml:"engine"`
	// Label is the Engine / Config text of its rows ("" builds one).
	Label   string         `yaml:"label"`
	Device  string         `yaml:"device"`
	Threads int            `yaml:"threads"`
	Config  map[string]any `yaml:"config"`
	// Precisions maps a precision to the engine config keys that select it,
	// for engines lmdrive does not know how to ask (see precisionConfig).
	Precisions map[string]map[string]any `yaml:"precisions"`
	Models     []string                  `yaml:"models"`
	Precision  []string                  `yaml:"precision"`
	TP         []int                     `yaml:"tp"`
	Workloads  []Workload                `yaml:"workloads"`
	// Reload opens the engine afresh for every cell instead of once per
	// model, precision and TP size (for engines that keep state between
	// requests, or to measure load every time).
	Reload bool `yaml:"reload"`
}

// Workload is one prompt → generation pair.
type Workload struct {
	Prompt int `yaml:"prompt"`
	Gen    int `yaml:"gen"`
}

// ReadPlan reads and checks a plan file.
func ReadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, fmt.Errorf("plan: %w", err)
	}
	return ParsePlan(path, b)
}

// ParsePlan parses plan text; name is the file, for errors. Unknown keys
// are refused: a misspelt key would otherwise silently change the matrix.
func ParsePlan(name string, b []byte) (Plan, error) {
	var p Plan
	if err := yaml.UnmarshalWithOptions(b, &p, yaml.Strict()); err != nil {
		return Plan{}, yamlError(name, err)
	}
	if err := p.fill(); err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", name, err)
	}
	return p, nil
}

var (
	yamlPosition = regexp.MustCompile(`^\[(\d+):(\d+)\] (.*)$`)
	yamlGoType   = regexp.MustCompile(`cannot unmarshal (\S+) into Go struct field \S+ of type (\S+)`)
)

// yamlError makes the parser's error one line: "plan.yaml:3:1: unknown field "engins"".
func yamlError(name string, err error) error {
	first, _, _ := strings.Cut(err.Error(), "\n")
	first = yamlGoType.ReplaceAllString(first, "a $1 where a $2 belongs")
	if m := yamlPosition.FindStringSubmatch(first); m != nil {
		return fmt.Errorf("plan %s:%s:%s: %s", name, m[1], m[2], m[3])
	}
	return fmt.Errorf("plan %s: %s", name, first)
}

// fill sets defaults and refuses a plan that cannot run.
func (p *Plan) fill() error {
	if p.Name == "" {
		return fmt.Errorf("name: give the plan a name (it marks every record the sweep writes)")
	}
	if strings.ContainsAny(p.Name, "/ \t") {
		return fmt.Errorf("name %q: use letters, digits, dots and dashes (it names the results file)", p.Name)
	}
	if p.Out == "" {
		p.Out = "results/" + p.Name + ".jsonl"
	}
	if p.Repeats == 0 {
		p.Repeats = 3
	}
	if p.Repeats < 1 {
		return fmt.Errorf("repeats %d: at least 1", p.Repeats)
	}
	if p.Warmup == nil {
		one := 1
		p.Warmup = &one
	}
	if *p.Warmup < 0 {
		return fmt.Errorf("warmup %d: not negative", *p.Warmup)
	}
	if p.IgnoreEOS == nil {
		yes := true
		p.IgnoreEOS = &yes
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Prompt.Source == "" {
		p.Prompt.Source = bench.SourceText
	}
	if p.Prompt.Source == bench.SourceText && p.Prompt.Mix == "" {
		p.Prompt.Mix = prompt.MixMixed
	}
	if p.Prompt.TokenizerBackend == "" {
		p.Prompt.TokenizerBackend = "auto"
	}
	if err := p.PromptOptions().Validate(); err != nil {
		return fmt.Errorf("prompt: %w", err)
	}
	if len(p.Engines) == 0 {
		return fmt.Errorf("engines: name at least one (- engine: ref)")
	}
	if len(p.TP) == 0 {
		p.TP = []int{1}
	}
	if len(p.Batch) == 0 {
		p.Batch = []int{1}
	}
	if err := checkWorkloads("workloads", p.Workloads); err != nil {
		return err
	}
	for _, b := range p.Batch {
		if b < 1 {
			return fmt.Errorf("batch %d: give batch sizes of at least 1 (a batch above 1 submits that many requests in one engine step)", b)
		}
	}
	for i := range p.Engines {
		e := &p.Engines[i]
		if e.Engine == "" {
			return fmt.Errorf("engines[%d]: engine is required (ref, trtllm, turbomind)", i)
		}
		if len(e.Models) == 0 {
			e.Models = p.Models
		}
		if len(e.Precision) == 0 {
			e.Precision = p.Precision
		}
		if len(e.TP) == 0 {
			e.TP = p.TP
		}
		if len(e.Workloads) == 0 {
			e.Workloads = p.Workloads
		} else if err := checkWorkloads(fmt.Sprintf("engines[%d] (%s): workloads", i, e.Engine), e.Workloads); err != nil {
			return err
		}
		if len(e.Models) == 0 {
			return fmt.Errorf("engines[%d] (%s): no models: set models for the plan or the engine", i, e.Engine)
		}
		if len(e.Precision) == 0 {
			e.Precision = []string{""} // the engine's default
		}
		for _, pr := range e.Precision {
			if _, err := e.precisionConfig(pr); err != nil {
				return fmt.Errorf("engines[%d] (%s): %w", i, e.Engine, err)
			}
		}
		for _, tp := range e.TP {
			if tp < 1 {
				return fmt.Errorf("engines[%d] (%s): tp %d: at least 1", i, e.Engine, tp)
			}
		}
	}
	return nil
}

func checkWorkloads(where string, ws []Workload) error {
	if len(ws) == 0 {
		return fmt.Errorf("%s: give at least one prompt/gen pair (- {prompt: 10000, gen: 800})", where)
	}
	for i, w := range ws {
		if w.Prompt < 1 || w.Gen < 1 {
			return fmt.Errorf("%s[%d]: prompt and gen must both be at least 1 (got %d, %d)", where, i, w.Prompt, w.Gen)
		}
	}
	return nil
}

// PromptOptions are the plan's prompt settings for a session.
func (p Plan) PromptOptions() bench.PromptOptions {
	return bench.PromptOptions{Source: p.Prompt.Source, Mix: p.Prompt.Mix, TextFile: p.Prompt.File, ChatTemplate: p.Prompt.ChatTemplate,
		Tokenizer: p.Prompt.Tokenizer, Backend: p.Prompt.TokenizerBackend}
}

// precisionConfig is the engine config that selects a precision for an
// engine other than ref: the plan's own mapping (the ref engine's comes from
// driver.EngineSettings, as --precision's does). "" is the engine's default.
func (e Engine) precisionConfig(p string) (map[string]any, error) {
	if p == "" {
		return nil, nil
	}
	if !slices.Contains(driver.Precisions, p) {
		return nil, fmt.Errorf("precision %q: want one of %s", p, strings.Join(driver.Precisions, ", "))
	}
	if cfg, ok := e.Precisions[p]; ok {
		return cfg, nil
	}
	if e.Engine == "ref" {
		return nil, nil // driver.EngineSettings.Precision sets it
	}
	return nil, fmt.Errorf("precision %s: say which config keys select it for %s (precisions: {%s: {key: value}})", p, e.Engine, p)
}
