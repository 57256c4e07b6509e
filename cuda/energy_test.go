package cuda

import (
	"math"
	"strings"
	"testing"
)

const ms = int64(1_000_000)

// point is what the sampler read at tMS milliseconds; a negative value
// means "not read".
type point struct{ tMS, energyMJ, powerMW, memMiB int64 }

// sample builds a point (kept short for the tables below).
func sample(tMS, energyMJ, powerMW, memMiB int64) point {
	return point{tMS, energyMJ, powerMW, memMiB}
}

// seriesOf builds a series from points: the energy counter readings belong
// to the point's time, the rest are fast samples.
func seriesOf(gpu int, points ...point) Series {
	ser := Series{GPU: gpu}
	for _, p := range points {
		t := p.tMS * ms
		if p.energyMJ >= 0 {
			ser.Energy = append(ser.Energy, EnergySample{TimeNs: t, CounterNs: t, EnergyMJ: Known(uint64(p.energyMJ))})
		}
		s := Sample{TimeNs: t}
		if p.powerMW >= 0 {
			s.PowerMW = Known(uint32(p.powerMW))
		}
		if p.memMiB >= 0 {
			s.MemoryUsedBytes = Known(uint64(p.memMiB) << 20)
		}
		ser.Samples = append(ser.Samples, s)
	}
	return ser
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPhaseEnergies(t *testing.T) {
	phases := Phases{SubmitNs: 50 * ms, FirstTokenNs: 150 * ms, LastTokenNs: 250 * ms}
	tests := []struct {
		name              string
		samples           []point
		prefillJ, decodeJ float64
		prefillW, decodeW float64
		source            EnergySource
		peakMiB           int64
	}{
		{
			// Counter 1000→2000→4000→5000 mJ at 0/100/200/300 ms:
			// E(50)=1500, E(150)=3000, E(250)=4500 mJ.
			name: "energy counter, interpolated at the boundaries",
			samples: []point{
				sample(0, 1000, 5000, 100), sample(100, 2000, 5000, 300),
				sample(200, 4000, 5000, 200), sample(300, 5000, 5000, 100),
			},
			prefillJ: 1.5, decodeJ: 1.5, prefillW: 15, decodeW: 15,
			source: FromCounter, peakMiB: 300,
		},
		{
			// Power 10 W, 20 W, 20 W, 10 W at 0/100/200/300 ms.
			// Prefill 50–150 ms: 50–100 ms averages (15+20)/2 W, 100–150 ms 20 W:
			// 0.05·17.5 + 0.05·20 = 1.875 J. Decode 150–250 ms: 0.05·20 +
			// 0.05·(20+15)/2 = 1.875 J.
			name: "power integrated where there is no counter",
			samples: []point{
				sample(0, -1, 10000, -1), sample(100, -1, 20000, -1),
				sample(200, -1, 20000, -1), sample(300, -1, 10000, -1),
			},
			prefillJ: 1.875, decodeJ: 1.875, prefillW: 18.75, decodeW: 18.75,
			source: FromPower, peakMiB: -1,
		},
		{
			// A boundary that falls exactly on a sample uses that sample.
			name: "boundaries on samples",
			samples: []point{
				sample(50, 0, -1, -1), sample(150, 2000, -1, -1), sample(250, 2500, -1, -1),
			},
			prefillJ: 2, decodeJ: 0.5, prefillW: 20, decodeW: 5,
			source: FromCounter, peakMiB: -1,
		},
		{
			// The counter going backwards (driver reloaded) makes it unusable;
			// the power readings take over.
			name: "counter reset falls back to power",
			samples: []point{
				sample(0, 9000, 10000, -1), sample(300, 10, 10000, -1),
			},
			prefillJ: 1, decodeJ: 1, prefillW: 10, decodeW: 10,
			source: FromPower, peakMiB: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PhaseEnergies([]Series{seriesOf(3, tt.samples...)}, phases)
			if err != nil {
				t.Fatal(err)
			}
			g := got[0]
			if g.GPU != 3 {
				t.Errorf("GPU = %d, want 3", g.GPU)
			}
			check := func(name string, e PhaseEnergy, wantJ, wantW float64) {
				t.Helper()
				if !e.EnergyJ.Valid || !near(e.EnergyJ.Value, wantJ) {
					t.Errorf("%s energy = %v J, want %v (missing: %q)", name, e.EnergyJ, wantJ, e.Missing)
				}
				if !e.MeanPowerW.Valid || !near(e.MeanPowerW.Value, wantW) {
					t.Errorf("%s mean power = %v W, want %v", name, e.MeanPowerW, wantW)
				}
				if e.Source != tt.source {
					t.Errorf("%s source = %q, want %q", name, e.Source, tt.source)
				}
				if e.DurationNs != 100*ms {
					t.Errorf("%s duration = %d, want %d", name, e.DurationNs, 100*ms)
				}
			}
			check("prefill", g.Prefill, tt.prefillJ, tt.prefillW)
			check("decode", g.Decode, tt.decodeJ, tt.decodeW)
			if !near(g.Total.EnergyJ.Value, tt.prefillJ+tt.decodeJ) {
				t.Errorf("total = %v J, want %v", g.Total.EnergyJ, tt.prefillJ+tt.decodeJ)
			}
			if tt.peakMiB < 0 {
				if g.PeakMemoryBytes.Valid {
					t.Errorf("peak memory = %v, want n/a", g.PeakMemoryBytes)
				}
			} else if g.PeakMemoryBytes != Known(uint64(tt.peakMiB)<<20) {
				t.Errorf("peak memory = %v, want %d MiB", g.PeakMemoryBytes, tt.peakMiB)
			}
		})
	}
}

func TestPhaseEnergiesCoverage(t *testing.T) {
	// Samples only from 100 ms on: prefill (50–150 ms) is not covered, decode is.
	series := []Series{seriesOf(0, sample(100, 0, -1, -1), sample(300, 2000, -1, -1))}
	got, err := PhaseEnergies(series, Phases{SubmitNs: 50 * ms, FirstTokenNs: 150 * ms, LastTokenNs: 250 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Prefill.EnergyJ.Valid || !strings.Contains(got[0].Prefill.Missing, "readings span") {
		t.Errorf("prefill = %+v, want n/a with a reason", got[0].Prefill)
	}
	if !near(got[0].Decode.EnergyJ.Value, 1) {
		t.Errorf("decode = %v J, want 1", got[0].Decode.EnergyJ)
	}

	none := []Series{seriesOf(0, sample(0, -1, -1, 5), sample(300, -1, -1, 5))}
	got, err = PhaseEnergies(none, Phases{SubmitNs: 50 * ms, FirstTokenNs: 150 * ms, LastTokenNs: 250 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Decode.Missing != "no power history, energy counter or power readings" {
		t.Errorf("missing = %q", got[0].Decode.Missing)
	}
}

func TestPhaseEnergiesEmptyDecode(t *testing.T) {
	// One output token: first == last, so decode lasts 0 ns and has no mean power.
	series := []Series{seriesOf(0, sample(0, 0, -1, -1), sample(100, 1000, -1, -1))}
	got, err := PhaseEnergies(series, Phases{SubmitNs: 10 * ms, FirstTokenNs: 60 * ms, LastTokenNs: 60 * ms})
	if err != nil {
		t.Fatal(err)
	}
	d := got[0].Decode
	if d.EnergyJ != Known(0.0) || d.MeanPowerW.Valid || d.DurationNs != 0 {
		t.Errorf("decode = %+v, want 0 J, no mean power, 0 ns", d)
	}
}

func TestPhasesValidate(t *testing.T) {
	for _, p := range []Phases{
		{SubmitNs: -1, FirstTokenNs: 2, LastTokenNs: 3},
		{SubmitNs: 1, FirstTokenNs: -1, LastTokenNs: 3},
		{SubmitNs: 5, FirstTokenNs: 2, LastTokenNs: 3},
		{SubmitNs: 1, FirstTokenNs: 4, LastTokenNs: 3},
	} {
		if _, err := PhaseEnergies(nil, p); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}

func TestPhaseEnergiesUnsortedSamples(t *testing.T) {
	series := []Series{seriesOf(0, sample(200, 4000, -1, -1), sample(0, 1000, -1, -1), sample(100, 2000, -1, -1))}
	got, err := PhaseEnergies(series, Phases{SubmitNs: 50 * ms, FirstTokenNs: 150 * ms, LastTokenNs: 200 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if !near(got[0].Prefill.EnergyJ.Value, 1.5) || !near(got[0].Decode.EnergyJ.Value, 1) {
		t.Errorf("prefill %v, decode %v; want 1.5 J and 1 J", got[0].Prefill.EnergyJ, got[0].Decode.EnergyJ)
	}
	if series[0].Energy[0].CounterNs != 200*ms {
		t.Error("PhaseEnergies reordered the caller's samples")
	}
}

func TestPhaseEnergiesUseCounterUpdateTimes(t *testing.T) {
	// The counter changes every 100 ms; the sampler read it at 20 ms
	// intervals, 5 ms reads, and the driver said when each value was made.
	// Reads of the same update are one point; the read times do not matter.
	var ser Series
	for i := range 16 {
		readAt := int64(i) * 20 * ms
		update := readAt / (100 * ms) * (100 * ms)
		ser.Energy = append(ser.Energy, EnergySample{
			TimeNs: readAt, ReadNs: 5 * ms, CounterNs: update,
			EnergyMJ: Known(uint64(70_000 + 7*update/ms)), // 7 W
		})
	}
	got, err := PhaseEnergies([]Series{ser}, Phases{SubmitNs: 10 * ms, FirstTokenNs: 130 * ms, LastTokenNs: 290 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if !near(got[0].Prefill.EnergyJ.Value, 0.84) || !near(got[0].Decode.MeanPowerW.Value, 7) {
		t.Errorf("prefill %v J (want 0.84), decode mean %v W (want 7)", got[0].Prefill.EnergyJ, got[0].Decode.MeanPowerW)
	}
}

func TestPowerPrefersInstant(t *testing.T) {
	// Instantaneous power, where present, is integrated instead of the
	// one-second average.
	ser := Series{Samples: []Sample{
		{TimeNs: 0, Reading: Reading{PowerMW: Known(uint32(100_000)), PowerInstantMW: Known(uint32(300_000))}},
		{TimeNs: 1000 * ms, Reading: Reading{PowerMW: Known(uint32(100_000)), PowerInstantMW: Known(uint32(300_000))}},
	}}
	got, err := PhaseEnergies([]Series{ser}, Phases{SubmitNs: 100 * ms, FirstTokenNs: 200 * ms, LastTokenNs: 700 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if !near(got[0].Prefill.EnergyJ.Value, 30) || got[0].Prefill.Source != FromPower {
		t.Errorf("prefill %+v, want 30 J from power", got[0].Prefill)
	}
}

// history builds driver power samples every 20 ms from fromMS to toMS at
// watts(t) watts.
func history(fromMS, toMS int64, watts func(tMS int64) int64) []DriverPowerSample {
	var out []DriverPowerSample
	for t := fromMS; t <= toMS; t += 20 {
		out = append(out, DriverPowerSample{TimeNs: t * ms, DriverUs: uint64(t * 1000), PowerMW: uint32(watts(t) * 1000)})
	}
	return out
}

func TestPhaseEnergiesFromDriverHistory(t *testing.T) {
	// 100 W until 200 ms, 500 W after: a step at the start of prefill.
	// The counter (100 ms steps, stale by design here) must not be used.
	step := func(tMS int64) int64 {
		if tMS < 200 {
			return 100
		}
		return 500
	}
	ser := seriesOf(0, sample(0, 0, -1, -1), sample(1000, 999_999, -1, -1))
	ser.DriverPower = history(0, 1000, step)
	phases := Phases{SubmitNs: 190 * ms, FirstTokenNs: 400 * ms, LastTokenNs: 800 * ms}
	got, err := PhaseEnergies([]Series{ser}, phases)
	if err != nil {
		t.Fatal(err)
	}
	// Samples at 180 ms (100 W) and 200 ms (500 W): at 190 ms the curve is
	// at 300 W. 190–200 ms: (300+500)/2 W · 0.01 s = 4 J; 200–400 ms:
	// 500 W · 0.2 s = 100 J.
	pre := got[0].Prefill
	if pre.Source != FromDriverPower || !near(pre.EnergyJ.Value, 104) {
		t.Errorf("prefill %+v, want 104 J from the driver's history", pre)
	}
	if dec := got[0].Decode; !near(dec.EnergyJ.Value, 200) || !near(dec.MeanPowerW.Value, 500) {
		t.Errorf("decode %+v, want 200 J at 500 W", dec)
	}

	// A gap in the history longer than maxHistoryGap: fall back to the counter.
	ser.DriverPower = append(history(0, 500, step), history(900, 1000, step)...)
	got, err = PhaseEnergies([]Series{ser}, phases)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Prefill.Source != FromDriverPower || got[0].Decode.Source != FromCounter {
		t.Errorf("sources %q and %q, want driver_power for prefill and counter across the gap",
			got[0].Prefill.Source, got[0].Decode.Source)
	}
}

func TestCounterCheck(t *testing.T) {
	ser := Series{
		DriverPower: history(0, 1000, func(int64) int64 { return 200 }),
		Energy: []EnergySample{
			{CounterNs: 50 * ms, EnergyMJ: Known(uint64(1_000))},              // plain: ignored
			{CounterNs: 104 * ms, Edge: true, EnergyMJ: Known(uint64(5_000))}, // first edge
			{CounterNs: 500 * ms, EnergyMJ: Known(uint64(90_000))},
			{CounterNs: 904 * ms, Edge: true, EnergyMJ: Known(uint64(163_000))}, // last edge
		},
	}
	got, err := PhaseEnergies([]Series{ser}, Phases{SubmitNs: 200 * ms, FirstTokenNs: 300 * ms, LastTokenNs: 800 * ms})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := got[0].CounterCheck.Get()
	if !ok || c.FromNs != 104*ms || c.ToNs != 904*ms || !near(c.CounterJ, 158) || !near(c.HistoryJ, 160) {
		t.Errorf("counter check %+v, want 104–904 ms, 158 J by the counter, 160 J by the history", got[0].CounterCheck)
	}
	ser.Energy = ser.Energy[:2]
	if got, _ := PhaseEnergies([]Series{ser}, Phases{SubmitNs: 200 * ms, FirstTokenNs: 300 * ms, LastTokenNs: 800 * ms}); got[0].CounterCheck.Valid {
		t.Error("a counter check from a single edge")
	}
}
