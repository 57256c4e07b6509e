package bench

import (
	"fmt"
	"math"
	"strings"

	"github.com/lmdrive/lmdrive/driver/splitmix"
)

// Load modes: how a run puts many requests through the engine.
const (
	// LoadBatch submits Batch requests together, in one engine step.
	LoadBatch = "batch"
	// LoadConcurrency keeps Concurrency requests in flight until Requests
	// have run (closed loop: a request starts when one ends).
	LoadConcurrency = "concurrency"
	// LoadRate starts Requests requests at Rate per second, whether or not
	// earlier ones ended (open loop).
	LoadRate = "rate"
)

// Arrival processes of the rate mode.
const (
	ArrivalPoisson  = "poisson"  // exponential gaps of mean 1/Rate, seeded
	ArrivalConstant = "constant" // one request every 1/Rate seconds
)

// Load says how one run sends many requests. A workload without one sends
// a single request per repeat.
type Load struct {
	Mode        string  `json:"mode"`
	Batch       int     `json:"batch,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Requests    int     `json:"requests,omitempty"`
	Rate        float64 `json:"rate,omitempty"` // requests per second
	Arrival     string  `json:"arrival,omitempty"`
	ArrivalSeed uint64  `json:"arrival_seed,omitempty"`
	// SamePrompt gives every request the same prompt; otherwise request i
	// gets a prompt of its own of the same length (seed + i).
	SamePrompt bool `json:"same_prompt,omitempty"`
	// Goodput is the latency target a request must meet to count as good.
	Goodput SLO `json:"goodput"`
}

// SLO is a latency target: time to first token (from the request's arrival)
// and mean inter-token latency of the request (its TPOT).
type SLO struct {
	TTFTS float64 `json:"ttft_s"`
	ITLms float64 `json:"itl_ms"`
}

// DefaultSLO is the goodput target when none is given: a first token within
// 2 s and a token every 100 ms after it, an interactive chat's bar.
var DefaultSLO = SLO{TTFTS: 2, ITLms: 100}

// Validate refuses a load that cannot run, naming the flag to fix.
func (l Load) Validate() error {
	switch l.Mode {
	case LoadBatch:
		if l.Batch < 1 {
			return fmt.Errorf("--batch %d: give the number of requests submitted together (at least 1)", l.Batch)
		}
	case LoadConcurrency:
		if l.Concurrency < 1 {
			return fmt.Errorf("--concurrency %d: give the number of requests kept in flight (at least 1)", l.Concurrency)
		}
		if l.Requests < 1 {
			return fmt.Errorf("--requests %d: give how many requests the closed loop runs in all (at least 1)", l.Requests)
		}
	case LoadRate:
		if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
			return fmt.Errorf("--request-rate %g: give requests per second, a positive number", l.Rate)
		}
		if l.Requests < 1 {
			return fmt.Errorf("--requests %d: give how many requests the open loop sends in all (at least 1)", l.Requests)
		}
		if l.Arrival != ArrivalPoisson && l.Arrival != ArrivalConstant {
			return fmt.Errorf("--arrival %q: want %s or %s", l.Arrival, ArrivalPoisson, ArrivalConstant)
		}
	default:
		return fmt.Errorf("load mode %q: want %s, %s or %s", l.Mode, LoadBatch, LoadConcurrency, LoadRate)
	}
	if l.Goodput.TTFTS <= 0 || l.Goodput.ITLms <= 0 {
		return fmt.Errorf("goodput target TTFT %g s, ITL %g ms: both must be positive", l.Goodput.TTFTS, l.Goodput.ITLms)
	}
	return nil
}

// Total is how many requests one run sends.
func (l Load) Total() int {
	if l.Mode == LoadBatch {
		return l.Batch
	}
	return l.Requests
}

// Level is the figure a sweep varies: the batch size, the concurrency, or
// the rate.
func (l Load) Level() float64 {
	switch l.Mode {
	case LoadBatch:
		return float64(l.Batch)
	case LoadConcurrency:
		return float64(l.Concurrency)
	default:
		return l.Rate
	}
}

// String names the load the way reports show it: "batch=32",
// "concurrency=16 requests=200", "rate=4/s poisson requests=100".
func (l Load) String() string {
	var s string
	switch l.Mode {
	case LoadBatch:
		s = fmt.Sprintf("batch=%d", l.Batch)
	case LoadConcurrency:
		s = fmt.Sprintf("concurrency=%d requests=%d", l.Concurrency, l.Requests)
	case LoadRate:
		s = fmt.Sprintf("rate=%g/s %s requests=%d", l.Rate, l.Arrival, l.Requests)
	default:
		return l.Mode
	}
	if l.SamePrompt {
		s += " same-prompt"
	}
	return s
}

// Arrivals returns when each request of the open loop arrives, in
// nanoseconds after the first (which arrives at 0). The same seed gives the
// same schedule on every machine.
func (l Load) Arrivals() []int64 {
	n := l.Total()
	out := make([]int64, n)
	if l.Mode != LoadRate {
		return out
	}
	mean := 1e9 / l.Rate
	rng := splitmix.New(l.ArrivalSeed ^ 0x617272697661 /* "arriva": apart from prompt streams */)
	t := 0.0
	for i := 1; i < n; i++ {
		gap := mean
		if l.Arrival == ArrivalPoisson {
			// u in (0, 1]: 53 random bits, never 0, so the log is finite.
			u := (float64(rng.Next()>>11) + 1) / (1 << 53)
			gap = -math.Log(u) * mean
		}
		t += gap
		out[i] = int64(t)
	}
	return out
}

// Modes lists the load modes, for messages.
func Modes() string { return strings.Join([]string{LoadBatch, LoadConcurrency, LoadRate}, ", ") }
