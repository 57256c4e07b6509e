package cuda

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func threeGPUs() *fakeTelemetry {
	return &fakeTelemetry{
		devices: []Device{{Index: 0}, {Index: 1}, {Index: 2}},
		reading: func(gpu, n int) (Reading, error) {
			r := Reading{PowerMW: Known(uint32(100000 + gpu)), SMClockMHz: Known(uint32(n))}
			if gpu == 2 && n == 1 {
				return r, errors.New("nvml: GPU 2: read power: GPU is lost")
			}
			return r, nil
		},
		// A counter that changes on every read.
		energy: func(gpu, n int) (Maybe[uint64], error) {
			return Known(uint64(1000*gpu + 10*n)), nil
		},
	}
}

func TestSamplerStartStop(t *testing.T) {
	tel := threeGPUs()
	s, err := NewSampler(tel, []int{2, 0}, time.Millisecond, WithEnergyInterval(3*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	s.clock = clock.read
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	series, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].GPU != 2 || series[1].GPU != 0 {
		t.Fatalf("series for GPUs %v, want [2 0]", gpusOf(series))
	}
	for _, ser := range series {
		// One round at Start, one at Stop, and ticks in between; the
		// counter without a power history is read at every slow tick.
		if len(ser.Samples) < 3 || len(ser.Energy) < 5 {
			t.Errorf("GPU %d: %d samples and %d energy samples, want at least 3 and 5", ser.GPU, len(ser.Samples), len(ser.Energy))
		}
		if ser.IntervalNs != int64(time.Millisecond) || ser.EnergyIntervalNs != int64(3*time.Millisecond) {
			t.Errorf("intervals %d and %d", ser.IntervalNs, ser.EnergyIntervalNs)
		}
		for i, x := range ser.Samples {
			// The fake clock steps 1000 ns per call, shared by both loops.
			if x.ReadNs < 1000 || x.ReadNs%1000 != 0 {
				t.Errorf("GPU %d sample %d: read cost %d ns, want whole fake clock steps", ser.GPU, i, x.ReadNs)
			}
			if x.SMClockMHz != Known(uint32(i)) {
				t.Errorf("GPU %d sample %d is reading %v", ser.GPU, i, x.SMClockMHz)
			}
		}
		e := ser.Energy
		// Start and Stop each read the counter until it changed: a plain
		// reading, then an edge, at both ends.
		for _, k := range []int{1, len(e) - 1} {
			if !e[k].Edge || e[k-1].Edge {
				t.Errorf("GPU %d energy %d and %d: edge %v and %v, want false then true", ser.GPU, k-1, k, e[k-1].Edge, e[k].Edge)
			}
			if e[k].CounterNs <= e[k-1].TimeNs || e[k].CounterNs >= e[k].TimeNs+e[k].ReadNs {
				t.Errorf("GPU %d edge at %d outside the reads %d..%d", ser.GPU, e[k].CounterNs, e[k-1].TimeNs, e[k].TimeNs+e[k].ReadNs)
			}
		}
		for k := range e {
			if k > 0 && e[k].EnergyMJ.Value <= e[k-1].EnergyMJ.Value {
				t.Errorf("GPU %d energy %d: %v after %v", ser.GPU, k, e[k].EnergyMJ, e[k-1].EnergyMJ)
			}
			if !e[k].Edge && e[k].CounterNs != e[k].TimeNs+e[k].ReadNs/2 {
				t.Errorf("GPU %d energy %d: counter time %d for a read at %d", ser.GPU, k, e[k].CounterNs, e[k].TimeNs)
			}
		}
		c := ser.ReadCost()
		var fastNs int64
		for _, x := range ser.Samples {
			fastNs += x.ReadNs
		}
		if c.Fast.Reads != len(ser.Samples) || c.Fast.TotalNs != fastNs || c.Fast.MeanNs < 1000 ||
			c.Energy.Reads != len(ser.Energy) || c.Energy.MeanNs < 1000 {
			t.Errorf("read cost = %+v", c)
		}
	}
	if series[0].Failures != 1 || !strings.Contains(series[0].FirstError, "GPU is lost") {
		t.Errorf("GPU 2: failures %d, first error %q", series[0].Failures, series[0].FirstError)
	}
	if !series[0].Samples[1].PowerMW.Valid {
		t.Error("a failed read dropped what it did read")
	}
	if series[1].Failures != 0 {
		t.Errorf("GPU 0: %d failures", series[1].Failures)
	}
}

// driverHistory is a fake driver that samples power every 20 ms of real
// time and keeps 2.4 s of samples; its counter changes every 30 ms.
func driverHistory() *fakeTelemetry {
	const period = int64(20 * time.Millisecond)
	wallMinusMono := time.Now().UnixNano() - MonotonicNanos()
	return &fakeTelemetry{
		devices: []Device{{Index: 0}, {Index: 1}},
		energy: func(int, int) (Maybe[uint64], error) {
			return Known(uint64(MonotonicNanos() / int64(30*time.Millisecond))), nil
		},
		history: func(gpu int, afterUs uint64) ([]DriverPowerSample, error) {
			now := MonotonicNanos()
			var out []DriverPowerSample
			for t := now - now%period - 120*period; t <= now; t += period {
				us := uint64((t + wallMinusMono) / 1000)
				if us > afterUs {
					out = append(out, DriverPowerSample{TimeNs: t, DriverUs: us, PowerMW: uint32(300_000 + gpu)})
				}
			}
			return out, nil
		},
	}
}

func TestSamplerPowerHistory(t *testing.T) {
	tel := driverHistory()
	s, err := NewSampler(tel, []int{0, 1}, 5*time.Millisecond, WithEnergyInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	beforeStop := MonotonicNanos()
	series, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, ser := range series {
		h := ser.DriverPower
		if len(h) < 100 {
			t.Fatalf("GPU %d: %d history samples, want the driver's 2.4 s and more", ser.GPU, len(h))
		}
		for k := 1; k < len(h); k++ {
			if h[k].DriverUs <= h[k-1].DriverUs {
				t.Fatalf("GPU %d: history sample %d repeats or goes back", ser.GPU, k)
			}
		}
		if last := h[len(h)-1].TimeNs; last < beforeStop {
			t.Errorf("GPU %d: history ends at %d, before Stop was called at %d", ser.GPU, last, beforeStop)
		}
		// With a history, the counter is read only at Start and Stop: a
		// plain reading and an edge each time.
		if len(ser.Energy) != 4 || !ser.Energy[1].Edge || !ser.Energy[3].Edge {
			t.Errorf("GPU %d: energy samples %+v, want plain, edge, plain, edge", ser.GPU, ser.Energy)
		}
		if ser.Energy[3].CounterNs < beforeStop {
			t.Errorf("GPU %d: last counter edge at %d, before Stop at %d", ser.GPU, ser.Energy[3].CounterNs, beforeStop)
		}
		if c := ser.ReadCost(); c.History.Reads < 3 || c.Energy.Reads < 4 {
			t.Errorf("GPU %d: cost %+v", ser.GPU, c)
		}
	}
}

func TestSamplerStopsWithContext(t *testing.T) {
	s, err := NewSampler(threeGPUs(), []int{0}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	series, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(series[0].Samples); n < 2 {
		t.Errorf("%d samples, want the Start and Stop rounds at least", n)
	}
	if series[0].Samples[0].TimeNs <= 0 {
		t.Error("real clock gave no timestamp")
	}
}

func TestSamplerMisuse(t *testing.T) {
	tel := threeGPUs()
	for _, tt := range []struct {
		name     string
		tel      Telemetry
		gpus     []int
		interval time.Duration
		want     string
	}{
		{"no telemetry", nil, []int{0}, time.Second, "no telemetry"},
		{"no GPUs", tel, nil, time.Second, "no GPUs"},
		{"bad interval", tel, []int{0}, 0, "must be positive"},
		{"out of range", tel, []int{3}, time.Second, "out of range"},
		{"twice", tel, []int{1, 1}, time.Second, "listed twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSampler(tt.tel, tt.gpus, tt.interval)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}

	if _, err := NewSampler(tel, []int{0}, time.Second, WithEnergyInterval(-time.Second)); err == nil {
		t.Error("negative energy interval accepted")
	}
	s, err := NewSampler(tel, []int{0}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop(); err == nil {
		t.Error("Stop before Start: no error")
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start: no error")
	}
	if _, err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop(); err == nil {
		t.Error("second Stop: no error")
	}
}

func gpusOf(series []Series) []int {
	var out []int
	for _, s := range series {
		out = append(out, s.GPU)
	}
	return out
}

func TestMonotonicNanosMatchesGoClock(t *testing.T) {
	// Go's monotonic clock is CLOCK_MONOTONIC on Linux: the interval between
	// two MonotonicNanos readings lies between the Go clock readings just
	// inside and just outside them. Exact bounds, however busy the machine:
	// a delay anywhere only widens the outer interval.
	a := time.Now()
	m0 := MonotonicNanos()
	b := time.Now()
	time.Sleep(5 * time.Millisecond)
	c := time.Now()
	m1 := MonotonicNanos()
	d := time.Now()
	const slack = time.Microsecond // rounding of the two clocks' readings
	if got := time.Duration(m1 - m0); got < c.Sub(b)-slack || got > d.Sub(a)+slack {
		t.Errorf("CLOCK_MONOTONIC advanced %v; Go's clock says between %v and %v", got, c.Sub(b), d.Sub(a))
	}
}

// BenchmarkMonotonicNanos is the cost of one timestamp (a clock_gettime
// system call); the sampler takes one per GPU per round, plus one.
func BenchmarkMonotonicNanos(b *testing.B) {
	for b.Loop() {
		MonotonicNanos()
	}
}

func TestSamplerWithoutSlowSources(t *testing.T) {
	// No energy counter and no power history: the slow loop has nothing to
	// read, and phase energy comes from the sampler's power readings.
	tel := &fakeTelemetry{
		devices: []Device{{Index: 0}},
		reading: func(int, int) (Reading, error) { return Reading{PowerMW: Known(uint32(50_000))}, nil },
	}
	s, err := NewSampler(tel, []int{0}, time.Millisecond, WithEnergyInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	submit := MonotonicNanos()
	time.Sleep(10 * time.Millisecond)
	first := MonotonicNanos()
	time.Sleep(10 * time.Millisecond)
	last := MonotonicNanos()
	series, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if e := series[0].Energy; len(e) != 1 || e[0].EnergyMJ.Valid || len(series[0].DriverPower) != 0 {
		t.Errorf("energy samples %+v and %d history samples, want the one probe at Start", e, len(series[0].DriverPower))
	}
	got, err := PhaseEnergies(series, Phases{SubmitNs: submit, FirstTokenNs: first, LastTokenNs: last})
	if err != nil {
		t.Fatal(err)
	}
	if d := got[0].Decode; d.Source != FromPower || !near(d.MeanPowerW.Value, 50) {
		t.Errorf("decode %+v, want 50 W from the power readings", d)
	}
}
