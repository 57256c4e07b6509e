package cuda

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RunTelemetry is the telemetry of one measured generation: per GPU, the
// energy of each phase and peak memory, and what sampling cost.
type RunTelemetry struct {
	GPUs        []int       `json:"gpus"`
	IntervalMs  float64     `json:"interval_ms"`
	Energy      []GPUEnergy `json:"energy"`
	Samples     []int       `json:"samples_per_gpu"`
	SamplerCost []ReadCost  `json:"sampler_cost"`
}

// Observer samples the telemetry of a set of GPUs during each generation it
// is started and stopped around, one generation at a time.
type Observer struct {
	t        Telemetry
	gpus     []int
	interval time.Duration
	sampler  *Sampler
}

// NewObserver watches gpus (NVML indices) at interval; every index must exist.
func NewObserver(t Telemetry, gpus []int, interval time.Duration) (*Observer, error) {
	for _, g := range gpus {
		if g < 0 || g >= t.DeviceCount() {
			return nil, fmt.Errorf("--gpus: GPU %d does not exist (NVML sees %d)", g, t.DeviceCount())
		}
	}
	return &Observer{t: t, gpus: gpus, interval: interval}, nil
}

// Start begins sampling, right before a request is submitted.
func (o *Observer) Start(ctx context.Context) error {
	s, err := NewSampler(o.t, o.gpus, o.interval)
	if err != nil {
		return err
	}
	o.sampler = s
	return s.Start(ctx)
}

// Stop ends sampling after the result and splits energy by phase. A
// generation that produced no token has no phases: its telemetry then has
// samples but no energy.
func (o *Observer) Stop(p Phases) (*RunTelemetry, error) {
	series, err := o.sampler.Stop()
	o.sampler = nil
	if err != nil {
		return nil, err
	}
	out := &RunTelemetry{GPUs: o.gpus, IntervalMs: float64(o.interval) / 1e6}
	for _, s := range series {
		out.Samples = append(out.Samples, len(s.Samples))
		out.SamplerCost = append(out.SamplerCost, s.ReadCost())
	}
	if p.FirstTokenNs > 0 && p.LastTokenNs >= p.FirstTokenNs {
		if out.Energy, err = PhaseEnergies(series, p); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ParseGPUList reads a comma-separated list of GPU indices ("0,1").
func ParseGPUList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--gpus %q: %q is not a GPU index (example: --gpus 0,1)", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}
