package bench

import (
	"math"
	"slices"

	"github.com/lmdrive/lmdrive/driver"
)

// Metrics of one generation. Seconds unless the name says otherwise.
type Metrics struct {
	OutputTokens     int      `json:"output_tokens"`
	LoadS            float64  `json:"load_s"`
	TTFTS            float64  `json:"ttft_s"`
	DecodeS          float64  `json:"decode_s"`
	RuntimeS         float64  `json:"runtime_s"`
	RuntimeWithLoadS float64  `json:"runtime_with_load_s"`
	TokPerS          float64  `json:"tok_s"`
	DecodeTokPerS    float64  `json:"decode_tok_s"`
	ITLms            ITL      `json:"itl_ms"`
	Observations     int      `json:"observations"`
	TokensPerObs     float64  `json:"tokens_per_observation"`
	DevicePrefillS   *float64 `json:"device_prefill_s,omitempty"`
	DeviceDecodeS    *float64 `json:"device_decode_s,omitempty"`
}

// ITL is the distribution of gaps between observations, in milliseconds.
type ITL struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Measure derives the metrics of one generation from the engine's result
// and tokens, following the definitions in the package doc.
func Measure(loadNs int64, res driver.Result, toks []driver.Token) Metrics {
	m := Metrics{OutputTokens: len(toks), LoadS: sec(loadNs)}
	if len(toks) == 0 {
		return m
	}
	first, last := toks[0].TimeNs, toks[len(toks)-1].TimeNs
	m.TTFTS = sec(first - res.SubmitNs)
	m.DecodeS = sec(last - first)
	m.RuntimeS = sec(last - res.SubmitNs)
	m.RuntimeWithLoadS = m.RuntimeS + m.LoadS
	if m.RuntimeS > 0 {
		m.TokPerS = float64(len(toks)) / m.RuntimeS
	}
	if m.DecodeS > 0 {
		m.DecodeTokPerS = float64(len(toks)-1) / m.DecodeS
	}

	// Tokens seen at the same instant are one observation.
	var gaps []float64
	obs := 1
	for i := 1; i < len(toks); i++ {
		if toks[i].TimeNs != toks[i-1].TimeNs {
			gaps = append(gaps, float64(toks[i].TimeNs-toks[i-1].TimeNs)/1e6)
			obs++
		}
	}
	m.Observations = obs
	m.TokensPerObs = float64(len(toks)) / float64(obs)
	if len(gaps) > 0 {
		slices.Sort(gaps)
		m.ITLms = ITL{P50: percentile(gaps, 50), P90: percentile(gaps, 90), P99: percentile(gaps, 99), Max: gaps[len(gaps)-1]}
	}
	if res.DevicePrefillNs >= 0 {
		v := sec(res.DevicePrefillNs)
		m.DevicePrefillS = &v
	}
	if res.DeviceDecodeNs >= 0 {
		v := sec(res.DeviceDecodeNs)
		m.DeviceDecodeS = &v
	}
	return m
}

func sec(ns int64) float64 { return float64(ns) / 1e9 }

// percentile of sorted values by the nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}
