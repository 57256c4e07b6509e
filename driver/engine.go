// Package driver loads engine libraries that implement lmdrive's C ABI
// (native/include/lmdrive.h) and runs them, in-process or in a runner child
// process that isolates the benchmark from an engine crash or hang.
//
// The rest of lmdrive sees only the Engine interface. Two implementations
// exist: NativeEngine calls a library loaded into this process through
// purego; RemoteEngine drives a NativeEngine inside `lmdrive runner` over
// JSON Lines on the child's stdin and stdout.
package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Engine is one created engine, ready to generate.
type Engine interface {
	// Info describes the engine as it reported itself after creation.
	Info() Info
	// Generate runs one request to completion. onTokens, if not nil, receives
	// tokens in the order and bundles the engine produced them. Cancelling ctx
	// asks the engine to stop; the result then says FinishCancelled.
	// Generate may be called from several goroutines at once: up to
	// Info().Sequences() generations run together, later calls wait for a
	// free place (or for ctx).
	Generate(ctx context.Context, req Request, onTokens func([]Token)) (Result, error)
	// Close destroys the engine and releases its library or process.
	Close() error
}

// BatchEngine is an Engine that can start several requests in the same
// engine step (ABI 1.1 start_batch; the runner's "batch" command).
type BatchEngine interface {
	Engine
	// GenerateBatch starts every request at once and runs them to
	// completion. It fails without starting anything when the batch exceeds
	// Info().Sequences() or a request is invalid; otherwise each request's
	// outcome (result or failure) is in the returned slice, in order.
	// onTokens receives request i's tokens; calls for different requests
	// may come from different goroutines at the same time.
	GenerateBatch(ctx context.Context, reqs []Request, onTokens func(i int, ts []Token)) ([]Outcome, error)
}

// Outcome is what became of one request of a batch.
type Outcome struct {
	Result Result
	Err    error
}

// Info is what an engine reports about itself (lmd_info) plus where it came from.
type Info struct {
	Engine      string   `json:"engine"`
	Library     string   `json:"library"`
	ABI         string   `json:"abi"`
	Backend     string   `json:"backend"`
	Version     string   `json:"version"`
	Model       string   `json:"model"`
	Dtype       string   `json:"dtype"`
	VocabSize   int      `json:"vocab_size"`
	TPSize      int      `json:"tp_size"`
	DeviceIDs   []int    `json:"device_ids"`
	EOSIDs      []int32  `json:"eos_ids"`
	MaxSeqLen   int      `json:"max_seq_len"`
	MaxInputLen int      `json:"max_input_len"`
	Caps        []string `json:"caps"`
	// MaxSequences is how many generations the engine runs at once (ABI
	// 1.1); an ABI 1.0 library reports 1.
	MaxSequences int `json:"max_sequences,omitempty"`
	// Batching names how requests share the engine: "join" (a request joins
	// a running batch between steps) and "chunked_prefill".
	Batching []string `json:"batching,omitempty"`
	// MaxStepTokens is how many tokens one engine step processes across
	// sequences (the prefill chunk budget); 0 when not known.
	MaxStepTokens int `json:"max_step_tokens,omitempty"`
	// Versions names the libraries behind the engine and their versions
	// (library, torch, CUDA, ...), where the engine reports them.
	Versions map[string]string `json:"versions,omitempty"`
	// Config is the engine's effective configuration as it reported it,
	// read back from its own objects after creation (JSON object).
	Config json.RawMessage `json:"effective_config,omitempty"`
	// LoadNs is engine creation time (create → ready), in nanoseconds.
	LoadNs int64 `json:"load_ns"`
}

// Sequences is how many generations may run at once: MaxSequences, and 1
// for an engine that did not say.
func (i Info) Sequences() int { return max(i.MaxSequences, 1) }

// Joins reports whether requests may join a batch that is already running.
func (i Info) Joins() bool { return slices.Contains(i.Batching, "join") }

// Sampling selects how the next token is chosen. The zero value is greedy.
type Sampling struct {
	Temperature float32 `json:"temperature"`
	TopK        int     `json:"top_k"`
	TopP        float32 `json:"top_p"`
	Seed        uint64  `json:"seed"`
}

// Request is one generation request: token IDs in, never text.
type Request struct {
	Prompt        []int32   `json:"prompt"`
	MaxNewTokens  int       `json:"max_new_tokens"`
	MinNewTokens  int       `json:"min_new_tokens,omitempty"`
	IgnoreEOS     bool      `json:"ignore_eos,omitempty"`
	StopSequences [][]int32 `json:"stop_sequences,omitempty"`
	WatchIDs      []int32   `json:"watch_ids,omitempty"`
	Sampling      Sampling  `json:"sampling"`
	WantLogprobs  bool      `json:"want_logprobs,omitempty"`
}

// Validate catches requests no engine could run, before they cross the ABI.
func (r Request) Validate() error {
	switch {
	case len(r.Prompt) == 0:
		return fmt.Errorf("request: the prompt is empty; give at least one token")
	case r.MaxNewTokens < 1:
		return fmt.Errorf("request: max new tokens is %d; it must be at least 1", r.MaxNewTokens)
	case r.MinNewTokens < 0 || r.MinNewTokens > r.MaxNewTokens:
		return fmt.Errorf("request: min new tokens %d must be between 0 and max new tokens %d", r.MinNewTokens, r.MaxNewTokens)
	case r.Sampling.Temperature < 0:
		return fmt.Errorf("request: temperature %g is negative", r.Sampling.Temperature)
	case r.Sampling.TopP < 0 || r.Sampling.TopP > 1:
		return fmt.Errorf("request: top-p %g must be in [0, 1] (0 or 1: no limit)", r.Sampling.TopP)
	case r.Sampling.TopK < 0:
		return fmt.Errorf("request: top-k %d is negative (0: no limit)", r.Sampling.TopK)
	}
	for i, s := range r.StopSequences {
		if len(s) == 0 {
			return fmt.Errorf("request: stop sequence %d is empty", i)
		}
	}
	return nil
}

// Token is one generated token as first seen on the host by the engine library.
type Token struct {
	ID    int32 `json:"id"`
	Index int   `json:"i"`
	// TimeNs is CLOCK_MONOTONIC nanoseconds, taken in native code.
	TimeNs int64 `json:"t"`
	// Bundle is how many tokens became visible in the same observation.
	Bundle  int       `json:"b"`
	Logprob Logprob   `json:"lp"`
	Watched []Logprob `json:"w,omitempty"`
}

// Logprob is a log-probability; NaN means the engine did not report one and
// is written as null in JSON.
type Logprob float32

// MarshalJSON writes null for a missing value.
func (l Logprob) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float32(l))
}

// UnmarshalJSON reads null as NaN.
func (l *Logprob) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = Logprob(math.NaN())
		return nil
	}
	var f float32
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*l = Logprob(f)
	return nil
}

// Valid reports whether the engine reported a value.
func (l Logprob) Valid() bool { return !math.IsNaN(float64(l)) }

// FinishReason says why a generation ended (LMD_FINISH_*).
type FinishReason int

const (
	FinishNone FinishReason = iota
	FinishEOS
	FinishStop
	FinishLength
	FinishLimit
	FinishCancelled
	FinishTimeout
	FinishError
)

var finishNames = [...]string{"none", "eos", "stop", "length", "limit", "cancelled", "timeout", "error"}

func (f FinishReason) String() string {
	if f >= 0 && int(f) < len(finishNames) {
		return finishNames[f]
	}
	return fmt.Sprintf("unknown(%d)", int(f))
}

// MarshalJSON writes the reason as a word.
func (f FinishReason) MarshalJSON() ([]byte, error) { return json.Marshal(f.String()) }

// UnmarshalJSON reads the word back.
func (f *FinishReason) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for i, n := range finishNames {
		if n == s {
			*f = FinishReason(i)
			return nil
		}
	}
	return fmt.Errorf("unknown finish reason %q (want one of %s)", s, strings.Join(finishNames[:], ", "))
}

// Result is the outcome of one generation (lmd_result). Times are
// CLOCK_MONOTONIC nanoseconds; -1 marks what the engine could not provide.
type Result struct {
	Finish             FinishReason `json:"finish"`
	RawStatus          int          `json:"raw_status"`
	RawStatusText      string       `json:"raw_status_text,omitempty"`
	PromptTokens       int          `json:"prompt_tokens"`
	OutputTokens       int          `json:"output_tokens"`
	CachedPromptTokens int          `json:"cached_prompt_tokens"`
	MaxNewRequested    int          `json:"max_new_requested"`
	MaxNewEffective    int          `json:"max_new_effective"`
	LimitSource        string       `json:"limit_source,omitempty"`
	StopToken          int32        `json:"stop_token"`
	StopSequence       int          `json:"stop_sequence"`
	IgnoreEOSApplied   bool         `json:"ignore_eos_applied"`
	StopIDs            []int32      `json:"stop_ids"`
	SubmitNs           int64        `json:"submit_ns"`
	FirstNs            int64        `json:"first_ns"`
	LastNs             int64        `json:"last_ns"`
	DoneNs             int64        `json:"done_ns"`
	DevicePrefillNs    int64        `json:"device_prefill_ns"`
	DeviceDecodeNs     int64        `json:"device_decode_ns"`
	EngineFirstNs      int64        `json:"engine_first_ns"`
	EngineLastNs       int64        `json:"engine_last_ns"`
	Detail             string       `json:"detail,omitempty"`
	// ScheduledNs is when the engine took the request into its batch (its
	// prefill began); -1 when the engine does not say (ABI 1.0).
	ScheduledNs int64 `json:"scheduled_ns"`
	// MeanBatch and MaxBatch: the mean and largest number of sequences in the
	// engine steps that gave this request a token; 0 when not reported.
	MeanBatch float64 `json:"mean_batch,omitempty"`
	MaxBatch  int     `json:"max_batch,omitempty"`
	// Config is the request's effective configuration as the engine saw it
	// (its generation or sampling parameters after defaults), where reported.
	Config json.RawMessage `json:"effective_config,omitempty"`
}
