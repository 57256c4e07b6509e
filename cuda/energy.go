package cuda

import (
	"fmt"
	"sort"
	"time"
)

// Phases are the boundaries of one generation, in CLOCK_MONOTONIC
// nanoseconds as engines report them: prefill runs from submit to the first
// token, decode from the first to the last token.
type Phases struct {
	SubmitNs     int64 `json:"submit_ns"`
	FirstTokenNs int64 `json:"first_token_ns"`
	LastTokenNs  int64 `json:"last_token_ns"`
}

// EnergySource says how an energy figure was obtained.
type EnergySource string

const (
	// FromDriverPower: the driver's own power samples (every 20 ms on
	// H100, with the driver's timestamps) integrated over time.
	FromDriverPower EnergySource = "driver_power"
	// FromCounter: the difference of the GPU's energy counter, interpolated
	// linearly at the phase boundaries; used where the driver keeps no
	// power history. The counter changes only every 100 ms or so, which
	// blurs the boundaries by up to that much.
	FromCounter EnergySource = "counter"
	// FromPower: the sampler's own power readings integrated over time,
	// where there is neither.
	FromPower EnergySource = "power"
)

// maxHistoryGap is the longest gap in the driver's power history that is
// integrated across; a longer one (the sampler fell behind the driver's
// buffer) makes the history unusable for that phase.
const maxHistoryGap = 250 * time.Millisecond

// PhaseEnergy is the energy one GPU used during one phase.
type PhaseEnergy struct {
	DurationNs int64          `json:"duration_ns"`
	EnergyJ    Maybe[float64] `json:"energy_j"`
	// MeanPowerW is EnergyJ over the duration; n/a for an empty phase.
	MeanPowerW Maybe[float64] `json:"mean_power_w"`
	Source     EnergySource   `json:"source,omitempty"`
	// Missing says why EnergyJ is n/a.
	Missing string `json:"missing,omitempty"`
}

// GPUEnergy is the energy and peak memory of one GPU for one generation.
type GPUEnergy struct {
	GPU     int         `json:"gpu"`
	Prefill PhaseEnergy `json:"prefill"`
	Decode  PhaseEnergy `json:"decode"`
	// Total runs from submit to the last token.
	Total PhaseEnergy `json:"total"`
	// PeakMemoryBytes is the highest memory use sampled over the whole
	// series; a spike shorter than the interval can be missed.
	PeakMemoryBytes Maybe[uint64] `json:"peak_memory_bytes"`
	// CounterCheck compares the energy counter with the driver's power
	// history between the counter's first and last edges.
	CounterCheck Maybe[CounterCheck] `json:"counter_check"`
}

// CounterCheck is the energy between two moments at which the energy counter
// was seen to change, by the counter and by the driver's power history.
// Their ratio shows how far the power history can be trusted in absolute
// terms; the history places energy in time, the counter sums it.
type CounterCheck struct {
	FromNs   int64   `json:"from_ns"`
	ToNs     int64   `json:"to_ns"`
	CounterJ float64 `json:"counter_j"`
	HistoryJ float64 `json:"history_j"`
}

// Validate checks that the boundaries are present and in order.
func (p Phases) Validate() error {
	switch {
	case p.SubmitNs <= 0 || p.FirstTokenNs <= 0 || p.LastTokenNs <= 0:
		return fmt.Errorf("phases: a boundary is missing (submit %d, first token %d, last token %d ns)",
			p.SubmitNs, p.FirstTokenNs, p.LastTokenNs)
	case p.FirstTokenNs < p.SubmitNs || p.LastTokenNs < p.FirstTokenNs:
		return fmt.Errorf("phases: boundaries out of order (submit %d, first token %d, last token %d ns)",
			p.SubmitNs, p.FirstTokenNs, p.LastTokenNs)
	}
	return nil
}

// PhaseEnergies splits each GPU's energy into prefill and decode. Energy
// comes from the driver's power history where it covers the phase, else from
// the energy counter, else from the sampler's power readings; Source says
// which. The series must cover the phases (a Sampler started before submit
// and stopped after the last token does); a phase no source covers is n/a,
// with the reason in Missing.
func PhaseEnergies(series []Series, p Phases) ([]GPUEnergy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	out := make([]GPUEnergy, len(series))
	for i, s := range series {
		src := sources{history: historyCurve(s.DriverPower), power: powerCurve(s.Samples)}
		src.counter, src.counterOK = counterCurve(s.Energy)
		out[i] = GPUEnergy{
			GPU:             s.GPU,
			Prefill:         src.phase(p.SubmitNs, p.FirstTokenNs),
			Decode:          src.phase(p.FirstTokenNs, p.LastTokenNs),
			Total:           src.phase(p.SubmitNs, p.LastTokenNs),
			PeakMemoryBytes: peakMemory(s.Samples),
			CounterCheck:    counterCheck(s.Energy, src.history),
		}
	}
	return out, nil
}

// sources are the curves energy can come from, best first.
type sources struct {
	history   curve // driver power samples, mW
	counter   curve // energy counter, mJ
	counterOK bool
	power     curve // sampler power readings, mW
}

func (src sources) phase(from, to int64) PhaseEnergy {
	e := PhaseEnergy{DurationNs: to - from}
	if j, ok := integrate(src.history, from, to, maxHistoryGap.Nanoseconds()); ok {
		e.EnergyJ, e.Source = Known(j), FromDriverPower
	} else if j, ok := counterEnergy(src.counter, src.counterOK, from, to); ok {
		e.EnergyJ, e.Source = Known(j), FromCounter
	} else if j, ok := integrate(src.power, from, to, 0); ok {
		e.EnergyJ, e.Source = Known(j), FromPower
	} else {
		e.Missing = coverageProblem(src, from, to)
		return e
	}
	if e.DurationNs > 0 {
		e.MeanPowerW = Known(e.EnergyJ.Value / (float64(e.DurationNs) / 1e9))
	}
	return e
}

// counterCheck integrates the power history between the first and the last
// counter edge, where both exist and the history covers them.
func counterCheck(energy []EnergySample, history curve) Maybe[CounterCheck] {
	var first, last *EnergySample
	for k := range energy {
		e := &energy[k]
		if !e.Edge || !e.EnergyMJ.Valid {
			continue
		}
		if first == nil || e.CounterNs < first.CounterNs {
			first = e
		}
		if last == nil || e.CounterNs > last.CounterNs {
			last = e
		}
	}
	if first == nil || last == first || last.EnergyMJ.Value < first.EnergyMJ.Value {
		return Maybe[CounterCheck]{}
	}
	j, ok := integrate(history, first.CounterNs, last.CounterNs, maxHistoryGap.Nanoseconds())
	if !ok {
		return Maybe[CounterCheck]{}
	}
	return Known(CounterCheck{
		FromNs:   first.CounterNs,
		ToNs:     last.CounterNs,
		CounterJ: float64(last.EnergyMJ.Value-first.EnergyMJ.Value) / 1e3,
		HistoryJ: j,
	})
}

// curve is a piecewise-linear function of time through sorted points.
type curve struct {
	ts []int64
	vs []float64
}

func (c *curve) add(t int64, v float64) { c.ts, c.vs = append(c.ts, t), append(c.vs, v) }

// sortByTime orders the points by time and keeps one point per time.
func (c *curve) sortByTime() {
	idx := make([]int, len(c.ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return c.ts[idx[a]] < c.ts[idx[b]] })
	var out curve
	for _, i := range idx {
		out.add(c.ts[i], c.vs[i])
	}
	out.dedupe()
	*c = out
}

// dedupe keeps the first of points with equal times (in a sorted curve):
// the same counter update read twice, for example.
func (c *curve) dedupe() {
	var out curve
	for i, t := range c.ts {
		if n := len(out.ts); n > 0 && out.ts[n-1] == t {
			continue
		}
		out.add(t, c.vs[i])
	}
	*c = out
}

// counterCurve is millijoules above the earliest reading, by the time each
// value belongs to. It is unusable (false) when the counter went backwards,
// which means the driver was reloaded.
func counterCurve(samples []EnergySample) (curve, bool) {
	var valid []EnergySample
	for _, s := range samples {
		if s.EnergyMJ.Valid {
			valid = append(valid, s)
		}
	}
	sort.SliceStable(valid, func(i, j int) bool { return valid[i].CounterNs < valid[j].CounterNs })
	var c curve
	for i, s := range valid {
		if i > 0 && s.EnergyMJ.Value < valid[i-1].EnergyMJ.Value {
			return curve{}, false
		}
		c.add(s.CounterNs, float64(s.EnergyMJ.Value-valid[0].EnergyMJ.Value)) // exact below 2^53 mJ
	}
	c.dedupe()
	return c, true
}

// historyCurve is the driver's power samples, milliwatts by time.
func historyCurve(samples []DriverPowerSample) curve {
	var c curve
	for _, s := range samples {
		c.add(s.TimeNs, float64(s.PowerMW))
	}
	c.sortByTime()
	return c
}

// powerCurve is the sampler's power readings, milliwatts by sample time.
func powerCurve(samples []Sample) curve {
	var c curve
	for _, s := range samples {
		if p, ok := s.Power().Get(); ok {
			c.add(s.TimeNs, float64(p))
		}
	}
	c.sortByTime()
	return c
}

// counterEnergy returns the joules between from and to from the energy
// counter, or false when the counter does not cover both times.
func counterEnergy(c curve, ok bool, from, to int64) (float64, bool) {
	if !ok {
		return 0, false
	}
	e0, ok0 := interpolate(c.ts, c.vs, from)
	e1, ok1 := interpolate(c.ts, c.vs, to)
	if !ok0 || !ok1 {
		return 0, false
	}
	return (e1 - e0) / 1e3, true
}

// integrate returns the joules under a power curve in milliwatts between
// from and to (the area under the piecewise-linear curve), or false when the
// curve does not cover both times or, with maxGap > 0, has a gap longer than
// maxGap nanoseconds between them.
func integrate(c curve, from, to int64, maxGap int64) (float64, bool) {
	ts, mw := c.ts, c.vs
	if _, ok := interpolate(ts, mw, from); !ok {
		return 0, false
	}
	if _, ok := interpolate(ts, mw, to); !ok {
		return 0, false
	}
	var mjoules float64 // mW·s
	for i := 0; i+1 < len(ts); i++ {
		lo, hi := max(ts[i], from), min(ts[i+1], to)
		if hi <= lo {
			continue
		}
		if maxGap > 0 && ts[i+1]-ts[i] > maxGap {
			return 0, false
		}
		pLo, _ := interpolate(ts[i:i+2], mw[i:i+2], lo)
		pHi, _ := interpolate(ts[i:i+2], mw[i:i+2], hi)
		mjoules += (pLo + pHi) / 2 * float64(hi-lo) / 1e9
	}
	return mjoules / 1e3, true
}

// interpolate evaluates the piecewise-linear function through (ts, vs) at t;
// ts is sorted. It reports false when t lies outside [ts[0], ts[len-1]].
func interpolate(ts []int64, vs []float64, t int64) (float64, bool) {
	if len(ts) == 0 || t < ts[0] || t > ts[len(ts)-1] {
		return 0, false
	}
	j := sort.Search(len(ts), func(i int) bool { return ts[i] >= t })
	if ts[j] == t || j == 0 {
		return vs[j], true
	}
	t0, t1 := ts[j-1], ts[j]
	frac := float64(t-t0) / float64(t1-t0)
	return vs[j-1] + (vs[j]-vs[j-1])*frac, true
}

func coverageProblem(src sources, from, to int64) string {
	c := src.history
	if len(c.ts) == 0 {
		c = src.counter
	}
	if len(c.ts) == 0 {
		c = src.power
	}
	if len(c.ts) == 0 {
		return "no power history, energy counter or power readings"
	}
	return fmt.Sprintf("readings span %d to %d ns, the phase %d to %d ns", c.ts[0], c.ts[len(c.ts)-1], from, to)
}

func peakMemory(samples []Sample) Maybe[uint64] {
	var peak Maybe[uint64]
	for _, s := range samples {
		if s.MemoryUsedBytes.Valid && (!peak.Valid || s.MemoryUsedBytes.Value > peak.Value) {
			peak = s.MemoryUsedBytes
		}
	}
	return peak
}
