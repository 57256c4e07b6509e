package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/progress"
	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
	"github.com/urfave/cli/v2"
)

// The flag groups below are shared by every command that opens an engine
// or builds prompts, so each flag has one spelling and one meaning.

// engineFlags say which engine to open and how to watch it.
func engineFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "engine", Value: "ref", Usage: "engine library to load (ref, trtllm, turbomind), or a Python engine (hf, vllm, lmdeploy, trtllm-py)"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where the ref or hf engine runs: cpu or cuda (hf also auto: device_map=\"auto\")"},
		&cli.BoolFlag{Name: "trust-remote-code", Usage: "let a Python engine's library run code shipped in the model folder (off: such a folder is refused)"},
		&cli.IntFlag{Name: "tp", Value: 1, Usage: "tensor-parallel size"},
		&cli.IntFlag{Name: "threads", Usage: "CPU threads of the ref engine (default: sized to the work)"},
		&cli.StringFlag{Name: "precision", Usage: "ref engine: " + strings.Join(driver.Precisions, ", ") + " (hf: fp32, fp16, bf16, or int8 through bitsandbytes)" +
			"; fp32/fp16/bf16 for weights and activations, int8/fp8 for weight-only quantization (per output channel) with activations in the device's default (fp32 on cpu, fp16 on cuda); fp8 needs an sm_90 GPU"},
		&cli.StringFlag{Name: "engine-config", Usage: "extra engine config keys as a JSON object, merged over the flags"},
	}, libraryFlags()...)
}

// libraryFlags say how an engine library is loaded and watched, whichever it is (a
// sweep plan names its engines itself).
func libraryFlags() []cli.Flag {
	return []cli.Flag{
		libPathFlag(),
		&cli.BoolFlag{Name: "allow-untrusted-lib", Usage: "load an engine library that another user owns or could have changed (also " + driver.AllowUntrustedEnv + "=1)"},
		&cli.StringFlag{Name: "python", EnvVars: []string{"LMDRIVE_PYTHON"},
			Usage: "Python interpreter of the Python engines (default: python3 on PATH)"},
		&cli.BoolFlag{Name: "in-process", Usage: "load the engine into this process instead of a runner child (no crash isolation, no timeouts)"},
		&cli.DurationFlag{Name: "load-timeout", Value: driver.DefaultLoadTimeout, Usage: "give up on an engine that loads longer"},
		&cli.DurationFlag{Name: "prefill-timeout", Value: driver.DefaultPrefillTimeout, Usage: "give up when the first token takes longer"},
		&cli.DurationFlag{Name: "stall-timeout", Value: driver.DefaultStallTimeout, Usage: "give up when no token comes for this long"},
	}
}

// telemetryFlags say which GPUs to sample during each repeat.
func telemetryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "gpus", Usage: "NVML indices of the GPUs to sample during each repeat (default: the engine's devices)"},
		&cli.DurationFlag{Name: "sample-interval", Value: cuda.DefaultSampleInterval, Usage: "GPU telemetry sampling interval"},
	}
}

// progressFlags say how progress shows while a benchmark runs.
func progressFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "show no progress and no engine log, only the result"},
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "auto (bars on a terminal, lines elsewhere), bars or lines"},
	}
}

// newDisplay reads the progress flags: progress goes to stderr.
func newDisplay(c *cli.Context) (*progress.Display, error) {
	mode := progress.Auto
	switch c.String("progress") {
	case "auto":
	case "bars":
		mode = progress.Bars
	case "lines":
		mode = progress.Lines
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bars or lines", c.String("progress"))
	}
	if c.Bool("quiet") {
		mode = progress.Quiet
	}
	return progress.New(c.App.ErrWriter, mode), nil
}

// withDisplay routes the engine's log through the display (above the bars,
// or nowhere when quiet).
func withDisplay(o driver.OpenOptions, d *progress.Display) driver.OpenOptions {
	if o.Log == nil {
		return o
	}
	if log := d.Log(); log != nil {
		o.Log = &prefixWriter{w: log, prefix: "  engine| "}
	} else {
		o.Log = nil
	}
	return o
}

// modelFlags name the model and the seed of its random weights and prompts.
func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Value: "random:tiny", Usage: "checkpoint folder, or random:<preset> for the ref engine (lmdrive model presets)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of random weights and of the prompt"},
	}
}

// promptFlags say how prompts are made; tokens is the default length.
func promptFlags(tokens int) []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "prompt-tokens", Value: tokens, Usage: "prompt length in tokens"},
		&cli.StringFlag{Name: "prompt-source", Value: bench.SourceText, Usage: "text: tokenized text (synthesized, or --prompt-file); ids: random token ids, no tokenizer"},
		&cli.StringFlag{Name: "mix", Value: prompt.MixMixed, Usage: "synthesized text: " + strings.Join(prompt.Mixes, ", ")},
		&cli.StringFlag{Name: "prompt-file", Usage: "use the text of `FILE`, cut to --prompt-tokens"},
		&cli.BoolFlag{Name: "chat-template", Usage: "wrap the text in Qwen's ChatML template (counted in --prompt-tokens)"},
	}, tokenizerFlags()...)
}

// tokenizerFlags pick the tokenizer and its backend.
func tokenizerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tokenizer", Usage: "Hugging Face tokenizer.json `FILE` (default: the built-in Qwen2.5 tokenizer)"},
		&cli.StringFlag{Name: "tokenizer-backend", Value: tokenize.BackendAuto,
			Usage: "auto, hf (Hugging Face's Rust library) or go (pure Go); built in: " + strings.Join(tokenize.Backends(), ", ")},
	}
}

// loadFlags send many requests per run instead of one: a batch, a closed
// loop or an open loop.
func loadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "batch", Usage: "load: submit `N` requests together, in one engine step"},
		&cli.IntFlag{Name: "concurrency", Usage: "load: keep `C` requests in flight until --requests have run (closed loop)"},
		&cli.Float64Flag{Name: "request-rate", Usage: "load: start requests at `RATE` per second, whether or not earlier ones ended (open loop)"},
		&cli.IntFlag{Name: "requests", Usage: "load: requests in all for --concurrency (default 4 × C) and --request-rate (required)"},
		&cli.StringFlag{Name: "arrival", Value: bench.ArrivalPoisson, Usage: "--request-rate arrivals: poisson (seeded) or constant"},
		&cli.Uint64Flag{Name: "arrival-seed", Usage: "seed of the Poisson arrivals (default: --seed)"},
		&cli.BoolFlag{Name: "same-prompt", Usage: "load: every request gets the same prompt (default: one prompt per request, same length)"},
		&cli.DurationFlag{Name: "goodput-ttft", Value: secondsDuration(bench.DefaultSLO.TTFTS), Usage: "goodput target: time to first token, from the request's arrival"},
		&cli.DurationFlag{Name: "goodput-itl", Value: secondsDuration(bench.DefaultSLO.ITLms / 1000), Usage: "goodput target: a request's mean inter-token latency"},
	}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// readLoad reads the load flags: nil when none of --batch, --concurrency and
// --request-rate was given (one request per repeat).
func readLoad(c *cli.Context) (*bench.Load, error) {
	var modes []string
	for _, f := range []string{"batch", "concurrency", "request-rate"} {
		if c.IsSet(f) {
			modes = append(modes, "--"+f)
		}
	}
	if len(modes) == 0 {
		for _, f := range []string{"requests", "same-prompt", "arrival", "arrival-seed"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s belongs to a load mode: add --batch, --concurrency or --request-rate", f)
			}
		}
		return nil, nil
	}
	if len(modes) > 1 {
		return nil, fmt.Errorf("%s are different load modes; give one", strings.Join(modes, " and "))
	}
	l := bench.Load{SamePrompt: c.Bool("same-prompt"), Requests: c.Int("requests"),
		Goodput: bench.SLO{TTFTS: c.Duration("goodput-ttft").Seconds(), ITLms: float64(c.Duration("goodput-itl")) / 1e6}}
	switch {
	case c.IsSet("batch"):
		if c.IsSet("requests") {
			return nil, fmt.Errorf("--requests does not apply to --batch: a batch run sends --batch requests")
		}
		l.Mode, l.Batch = bench.LoadBatch, c.Int("batch")
	case c.IsSet("concurrency"):
		l.Mode, l.Concurrency = bench.LoadConcurrency, c.Int("concurrency")
		if !c.IsSet("requests") {
			l.Requests = 4 * l.Concurrency
		}
	default:
		l.Mode, l.Rate, l.Arrival = bench.LoadRate, c.Float64("request-rate"), c.String("arrival")
		l.ArrivalSeed = c.Uint64("seed")
		if c.IsSet("arrival-seed") {
			l.ArrivalSeed = c.Uint64("arrival-seed")
		}
	}
	if l.Mode != bench.LoadRate && (c.IsSet("arrival") || c.IsSet("arrival-seed")) {
		return nil, fmt.Errorf("--arrival and --arrival-seed apply to --request-rate only")
	}
	return &l, l.Validate()
}

func libPathFlag() cli.Flag {
	return &cli.StringFlag{Name: "lib-path",
		Usage: "engine library file or folder (then LMDRIVE_LIB_PATH, next to the executable, build/lib/lmdrive)"}
}

// openOptions reads the engine and model flags.
func openOptions(c *cli.Context) (driver.OpenOptions, error) {
	engine := c.String("engine")
	cfg, err := driver.EngineSettings{Engine: engine, Model: c.String("model"), Seed: c.Uint64("seed"), Device: c.String("device"),
		Threads: c.Int("threads"), TP: c.Int("tp"), Precision: c.String("precision"), Extra: c.String("engine-config"),
		TrustRemoteCode: c.Bool("trust-remote-code")}.Config()
	if err != nil {
		return driver.OpenOptions{}, err
	}
	o := libraryOptions(c)
	o.Engine, o.Config = engine, cfg
	return o, o.Validate()
}

// libraryOptions reads the library flags: everything of OpenOptions but the
// engine and its config.
func libraryOptions(c *cli.Context) driver.OpenOptions {
	search := driver.DefaultSearch(c.String("lib-path"))
	search.AllowUntrusted = search.AllowUntrusted || c.Bool("allow-untrusted-lib")
	return driver.OpenOptions{Search: search, InProcess: c.Bool("in-process"),
		LoadTimeout: c.Duration("load-timeout"), PrefillTimeout: c.Duration("prefill-timeout"),
		StallTimeout: c.Duration("stall-timeout"), Log: engineLog(c), Python: c.String("python")}
}

// promptOptions reads the prompt flags.
func promptOptions(c *cli.Context) bench.PromptOptions {
	return bench.PromptOptions{Source: c.String("prompt-source"), Mix: c.String("mix"), TextFile: c.String("prompt-file"),
		ChatTemplate: c.Bool("chat-template"), Tokenizer: c.String("tokenizer"), Backend: c.String("tokenizer-backend")}
}

func openTokenizer(c *cli.Context) (tokenize.Tokenizer, error) {
	return tokenize.Open(c.String("tokenizer"), c.String("tokenizer-backend"))
}

// engineLog shows the engine's stderr unless LMDRIVE_QUIET_ENGINE is set.
// It returns a plain nil interface when quiet: a typed nil pointer would
// look like a writer and fail on the first log line.
func engineLog(c *cli.Context) io.Writer {
	if os.Getenv("LMDRIVE_QUIET_ENGINE") != "" {
		return nil
	}
	return &prefixWriter{w: c.App.ErrWriter, prefix: "  engine| "}
}

// prefixWriter prefixes each line, so engine logs stand apart.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var sb strings.Builder
	for _, ch := range string(b) {
		if !p.midLine {
			sb.WriteString(p.prefix)
		}
		sb.WriteRune(ch)
		p.midLine = ch != '\n'
	}
	_, err := p.w.Write([]byte(sb.String()))
	return len(b), err
}
