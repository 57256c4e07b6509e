package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
	"github.com/lmdrive/lmdrive/driver"
)

// gpuObserver samples NVML telemetry of the GPUs an engine uses during each
// measured repeat and records per-phase energy and peak memory.
type gpuObserver struct {
	t        cuda.Telemetry
	gpus     []int
	interval time.Duration
	sampler  *cuda.Sampler
}

// gpuTelemetry is what a record's "telemetry" field holds.
type gpuTelemetry struct {
	GPUs        []int            `json:"gpus"`
	IntervalMs  float64          `json:"interval_ms"`
	Energy      []cuda.GPUEnergy `json:"energy"`
	Samples     []int            `json:"samples_per_gpu"`
	SamplerCost []cuda.ReadCost  `json:"sampler_cost"`
}

func (o *gpuObserver) Start(ctx context.Context) error {
	s, err := cuda.NewSampler(o.t, o.gpus, o.interval)
	if err != nil {
		return err
	}
	o.sampler = s
	return s.Start(ctx)
}

func (o *gpuObserver) Stop(res driver.Result) (any, error) {
	series, err := o.sampler.Stop()
	if err != nil {
		return nil, err
	}
	out := gpuTelemetry{GPUs: o.gpus, IntervalMs: float64(o.interval) / 1e6}
	for _, s := range series {
		out.Samples = append(out.Samples, len(s.Samples))
		out.SamplerCost = append(out.SamplerCost, s.ReadCost())
	}
	if res.FirstNs > 0 && res.LastNs >= res.FirstNs {
		if out.Energy, err = cuda.PhaseEnergies(series, cuda.Phases{SubmitNs: res.SubmitNs, FirstTokenNs: res.FirstNs, LastTokenNs: res.LastNs}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// setupTelemetry decides which GPUs to watch (--gpus, else the engine's
// devices) and adds the GPU inventory to the reproducibility block. Without
// NVML it says so once and the run goes on without telemetry.
func setupTelemetry(spec string, interval time.Duration, info driver.Info, repro *bench.Repro, warn func(string)) (bench.Observer, func(), error) {
	gpus := info.DeviceIDs
	if spec != "" {
		var err error
		if gpus, err = parseGPUList(spec); err != nil {
			return nil, nil, err
		}
	}
	t, err := nvml.Open()
	if err != nil {
		if len(gpus) > 0 {
			warn(fmt.Sprintf("no GPU telemetry: %v", err))
		}
		return nil, func() {}, nil
	}
	if inv, err := cuda.ReadInventory(t); err == nil {
		repro.GPU = inv
		repro.Libraries = cuda.ProbeLibraries()
	}
	if len(gpus) == 0 {
		return nil, func() { t.Close() }, nil
	}
	for _, g := range gpus {
		if g < 0 || g >= t.DeviceCount() {
			t.Close()
			return nil, nil, fmt.Errorf("--gpus: GPU %d does not exist (NVML sees %d)", g, t.DeviceCount())
		}
	}
	return &gpuObserver{t: t, gpus: gpus, interval: interval}, func() { t.Close() }, nil
}

func parseGPUList(s string) ([]int, error) {
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
