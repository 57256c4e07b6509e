package bench

import (
	"context"
	"slices"
	"time"

	"github.com/lmdrive/lmdrive/driver"
)

// Overhead is what lmdrive's own machinery costs per token, measured with an
// engine in zero-compute calibration mode (the ref engine's "calibrate"),
// which emits tokens without model work through the same path as a real run.
type Overhead struct {
	Tokens int `json:"tokens"`
	// EngineStepUs is the median gap between tokens as the engine timed them:
	// the engine loop plus handing a token to lmdrive. It bounds how much the
	// harness can add to any measured inter-token latency.
	EngineStepUs float64 `json:"engine_step_us"`
	// DeliveryUs is the wall time per token for lmdrive to receive every
	// token (poll, conversion, and the runner protocol when out of process).
	DeliveryUs float64 `json:"delivery_us"`
	// Path says which path was measured: "in-process" or "runner".
	Path string `json:"path"`
}

// MeasureOverhead generates n tokens on a calibration engine.
func MeasureOverhead(ctx context.Context, eng driver.Engine, n int, path string) (Overhead, error) {
	var toks []driver.Token
	toks = make([]driver.Token, 0, n)
	start := time.Now()
	_, err := eng.Generate(ctx, driver.Request{Prompt: []int32{1}, MaxNewTokens: n, IgnoreEOS: true},
		func(ts []driver.Token) { toks = append(toks, ts...) })
	wall := time.Since(start)
	if err != nil {
		return Overhead{}, err
	}
	gaps := make([]float64, 0, len(toks))
	for i := 1; i < len(toks); i++ {
		gaps = append(gaps, float64(toks[i].TimeNs-toks[i-1].TimeNs)/1e3)
	}
	slices.Sort(gaps)
	o := Overhead{Tokens: len(toks), Path: path, DeliveryUs: float64(wall.Nanoseconds()) / 1e3 / float64(max(len(toks), 1))}
	if len(gaps) > 0 {
		o.EngineStepUs = gaps[len(gaps)/2]
	}
	return o, nil
}
