package cuda

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sample is one timestamped reading of the fast telemetry of one GPU.
type Sample struct {
	// TimeNs is CLOCK_MONOTONIC (MonotonicNanos) just before the reading.
	TimeNs int64 `json:"t_ns"`
	// ReadNs is how long the reading took: the sampler's own cost for this
	// GPU at this tick.
	ReadNs int64 `json:"read_ns"`
	Reading
}

// EnergySample is one timestamped reading of a GPU's energy counter.
type EnergySample struct {
	// TimeNs is CLOCK_MONOTONIC just before the read; ReadNs its duration.
	TimeNs int64 `json:"t_ns"`
	ReadNs int64 `json:"read_ns"`
	// CounterNs is the time the value is taken to belong to. For an edge
	// (Edge true) it is when the counter changed to this value, found by
	// reading until it did, within a read's duration either way. Otherwise
	// it is the middle of the read, and since the counter changes only
	// every 100 ms or so, the value may be that much older.
	CounterNs int64         `json:"counter_ns"`
	Edge      bool          `json:"edge,omitempty"`
	EnergyMJ  Maybe[uint64] `json:"energy_mj"`
}

// Series is the time series of one GPU.
type Series struct {
	GPU              int            `json:"gpu"`
	IntervalNs       int64          `json:"interval_ns"`
	EnergyIntervalNs int64          `json:"energy_interval_ns"`
	Samples          []Sample       `json:"samples"`
	Energy           []EnergySample `json:"energy"`
	// DriverPower is the driver's own power history over the run, where
	// the driver keeps one.
	DriverPower []DriverPowerSample `json:"driver_power,omitempty"`
	// EnergyCost and HistoryCost are what reading the energy counter (every
	// read, kept or not) and fetching the power history cost.
	EnergyCost  Cost `json:"energy_cost"`
	HistoryCost Cost `json:"history_cost"`
	// Failures counts readings that returned an error; FirstError is the
	// first such error. Failed readings are kept with whatever they read.
	Failures   int    `json:"failures,omitempty"`
	FirstError string `json:"first_error,omitempty"`
}

// Cost summarizes how long a kind of reading took.
type Cost struct {
	Reads   int   `json:"reads"`
	MeanNs  int64 `json:"mean_ns"`
	MaxNs   int64 `json:"max_ns"`
	TotalNs int64 `json:"total_ns"`
}

func (c *Cost) add(ns int64) {
	c.Reads++
	c.TotalNs += ns
	c.MaxNs = max(c.MaxNs, ns)
	c.MeanNs = c.TotalNs / int64(c.Reads)
}

// ReadCost is the sampler's own cost for one GPU.
type ReadCost struct {
	Fast    Cost `json:"fast"`
	Energy  Cost `json:"energy"`
	History Cost `json:"history"`
}

// ReadCost measures the sampler's own cost for this GPU from the durations
// it recorded.
func (s Series) ReadCost() ReadCost {
	var c ReadCost
	for _, x := range s.Samples {
		c.Fast.add(x.ReadNs)
	}
	c.Energy = s.EnergyCost
	c.History = s.HistoryCost
	return c
}

const (
	// DefaultSampleInterval is short enough to resolve a prefill of a few
	// hundred milliseconds; a round of fast readings costs about 25 µs per
	// H100.
	DefaultSampleInterval = 20 * time.Millisecond
	// DefaultEnergyInterval is how often the slow sources are read: the
	// driver's power history (it keeps about 2.4 s), or, where there is
	// none, the energy counter (which changes every 100 ms on H100).
	DefaultEnergyInterval = 100 * time.Millisecond
	// waitLimit bounds how long Start and Stop read the energy counter
	// waiting for it to change, and how long Stop waits for the driver's
	// power history to pass the moment Stop was called.
	waitLimit   = 250 * time.Millisecond
	historyPoll = 10 * time.Millisecond
)

// Sampler reads a set of GPUs in the background in two goroutines: the fast
// telemetry every interval, and every energy interval the driver's power
// history (or the energy counter where the driver keeps no history), so that
// a slow read does not delay the fast readings. When started and when
// stopped it takes a round of fast readings, fetches the power history, and
// reads each energy counter until it changes, which pins the counter's value
// to a moment; its series therefore cover everything between Start and Stop.
type Sampler struct {
	telemetry      Telemetry
	gpus           []int
	interval       time.Duration
	energyInterval time.Duration
	clock          func() int64 // MonotonicNanos, or a fake in tests

	mu      sync.Mutex // guards state and the start/stop sequence
	state   samplerState
	series  []Series
	slow    []slowSources
	cancel  context.CancelFunc
	running sync.WaitGroup
	failMu  sync.Mutex // guards Failures and FirstError of every series
}

// slowSources records, per GPU, which slow sources it has and the newest
// power history sample fetched.
type slowSources struct {
	history bool // the driver keeps a power history
	counter bool // the GPU has an energy counter
	lastUs  uint64
}

type samplerState int

const (
	samplerNew samplerState = iota
	samplerRunning
	samplerDone
)

// SamplerOption adjusts a Sampler.
type SamplerOption func(*Sampler) error

// WithEnergyInterval sets how often the slow sources are read
// (DefaultEnergyInterval otherwise).
func WithEnergyInterval(d time.Duration) SamplerOption {
	return func(s *Sampler) error {
		if d <= 0 {
			return fmt.Errorf("energy interval %v must be positive", d)
		}
		s.energyInterval = d
		return nil
	}
}

// NewSampler prepares a sampler of the given GPUs (NVML indices, one per
// tensor-parallel rank) that takes the fast readings every interval.
func NewSampler(t Telemetry, gpus []int, interval time.Duration, opts ...SamplerOption) (*Sampler, error) {
	if t == nil {
		return nil, errors.New("sampler: no telemetry")
	}
	if len(gpus) == 0 {
		return nil, errors.New("sampler: no GPUs to sample")
	}
	if interval <= 0 {
		return nil, fmt.Errorf("sampler: interval %v must be positive", interval)
	}
	seen := make(map[int]bool, len(gpus))
	for _, g := range gpus {
		if err := CheckIndex(g, t.DeviceCount()); err != nil {
			return nil, fmt.Errorf("sampler: %w", err)
		}
		if seen[g] {
			return nil, fmt.Errorf("sampler: GPU %d is listed twice", g)
		}
		seen[g] = true
	}
	s := &Sampler{
		telemetry:      t,
		gpus:           append([]int(nil), gpus...),
		interval:       interval,
		energyInterval: DefaultEnergyInterval,
		clock:          MonotonicNanos,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("sampler: %w", err)
		}
	}
	return s, nil
}

// Start takes the first round of readings and starts sampling in the
// background until Stop is called or ctx ends. It returns once the energy
// counters have changed (up to about 100 ms on H100). A Sampler runs once.
func (s *Sampler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != samplerNew {
		return errors.New("sampler: already started")
	}
	s.series = make([]Series, len(s.gpus))
	s.slow = make([]slowSources, len(s.gpus))
	for i, g := range s.gpus {
		s.series[i] = Series{GPU: g, IntervalNs: s.interval.Nanoseconds(), EnergyIntervalNs: s.energyInterval.Nanoseconds()}
	}
	s.fastRound()
	s.eachGPU(func(i int) {
		s.slow[i].history = s.fetchHistory(i) > 0
		s.slow[i].counter = s.lockCounter(i)
	})
	ctx, s.cancel = context.WithCancel(ctx)
	s.running.Add(2)
	go s.every(ctx, s.interval, s.fastRound)
	go s.every(ctx, s.energyInterval, s.slowRound)
	s.state = samplerRunning
	return nil
}

// Stop ends sampling, takes a last round of readings and returns one series
// per GPU, in the order the GPUs were given. So that the series cover the
// moment Stop was called, it waits for the driver's power history to pass
// that moment and for each energy counter to change once more (up to about
// 100 ms on H100), and the history to pass that change too.
func (s *Sampler) Stop() ([]Series, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != samplerRunning {
		return nil, errors.New("sampler: not running")
	}
	stopAt := s.clock()
	s.cancel()
	s.running.Wait()
	s.fastRound()
	s.eachGPU(func(i int) {
		until := stopAt
		if s.slow[i].counter {
			s.lockCounter(i)
			until = max(until, s.lastEdge(i))
		}
		if s.slow[i].history {
			s.historyUntil(i, until)
		}
	})
	s.state = samplerDone
	return s.series, nil
}

func (s *Sampler) every(ctx context.Context, d time.Duration, round func()) {
	defer s.running.Done()
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			round()
		}
	}
}

// eachGPU runs f for every GPU at once and waits; f(i) may touch only
// series[i] and slow[i].
func (s *Sampler) eachGPU(f func(i int)) {
	var wg sync.WaitGroup
	for i := range s.gpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// fastRound reads every GPU once. Only one goroutine runs it at a time:
// Start before the loops begin, the fast loop, and Stop after it ended.
func (s *Sampler) fastRound() {
	t0 := s.clock()
	for i, g := range s.gpus {
		r, err := s.telemetry.Read(g)
		t1 := s.clock()
		ser := &s.series[i]
		ser.Samples = append(ser.Samples, Sample{TimeNs: t0, ReadNs: t1 - t0, Reading: r})
		s.noteFailure(ser, err)
		t0 = t1
	}
}

// slowRound fetches each GPU's power history, or reads its energy counter
// where there is no history; like fastRound, one goroutine at a time.
func (s *Sampler) slowRound() {
	for i := range s.gpus {
		switch {
		case s.slow[i].history:
			s.fetchHistory(i)
		case s.slow[i].counter:
			s.readEnergy(i)
		}
	}
}

// fetchHistory appends the driver's power samples that are new since the
// last fetch and returns how many there were.
func (s *Sampler) fetchHistory(i int) int {
	cur := &s.slow[i]
	ser := &s.series[i]
	t0 := s.clock()
	points, err := s.telemetry.PowerHistory(s.gpus[i], cur.lastUs)
	ser.HistoryCost.add(s.clock() - t0)
	s.noteFailure(ser, err)
	n := 0
	for _, p := range points {
		if p.DriverUs > cur.lastUs {
			ser.DriverPower = append(ser.DriverPower, p)
			cur.lastUs = p.DriverUs
			n++
		}
	}
	return n
}

// historyUntil fetches the power history until it reaches stopAt or
// waitLimit has passed.
func (s *Sampler) historyUntil(i int, stopAt int64) {
	begin := time.Now()
	for {
		s.fetchHistory(i)
		ser := &s.series[i]
		if n := len(ser.DriverPower); n > 0 && ser.DriverPower[n-1].TimeNs >= stopAt {
			return
		}
		if time.Since(begin) > waitLimit {
			return
		}
		time.Sleep(historyPoll)
	}
}

// readEnergy reads the energy counter once; the value is taken to belong to
// the middle of the read.
func (s *Sampler) readEnergy(i int) EnergySample {
	e := s.readCounter(i)
	e.CounterNs = e.TimeNs + e.ReadNs/2
	ser := &s.series[i]
	ser.Energy = append(ser.Energy, e)
	return e
}

// lockCounter reads the energy counter back to back until its value
// changes, and records the change as an edge: the counter took the new value
// between the start of the last read that returned the old one and the end
// of the first read that returned the new one. It gives up after waitLimit.
// It reports whether the GPU has a counter at all.
func (s *Sampler) lockCounter(i int) bool {
	prev := s.readEnergy(i)
	if !prev.EnergyMJ.Valid {
		return false
	}
	begin := time.Now()
	for time.Since(begin) <= waitLimit {
		cur := s.readCounter(i)
		if !cur.EnergyMJ.Valid {
			return true
		}
		if cur.EnergyMJ.Value != prev.EnergyMJ.Value {
			end := cur.TimeNs + cur.ReadNs
			cur.CounterNs = prev.TimeNs + (end-prev.TimeNs)/2
			cur.Edge = true
			ser := &s.series[i]
			ser.Energy = append(ser.Energy, cur)
			return true
		}
		prev = cur
	}
	return true
}

// lastEdge is the time of the newest counter edge of GPU i, 0 if none.
func (s *Sampler) lastEdge(i int) int64 {
	var t int64
	for _, e := range s.series[i].Energy {
		if e.Edge {
			t = max(t, e.CounterNs)
		}
	}
	return t
}

func (s *Sampler) readCounter(i int) EnergySample {
	t0 := s.clock()
	v, err := s.telemetry.ReadEnergy(s.gpus[i])
	t1 := s.clock()
	ser := &s.series[i]
	ser.EnergyCost.add(t1 - t0)
	s.noteFailure(ser, err)
	return EnergySample{TimeNs: t0, ReadNs: t1 - t0, EnergyMJ: v}
}

func (s *Sampler) noteFailure(ser *Series, err error) {
	if err == nil {
		return
	}
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if ser.Failures == 0 {
		ser.FirstError = err.Error()
	}
	ser.Failures++
}
