package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/driver"
)

func TestArrivals(t *testing.T) {
	c := Load{Mode: LoadRate, Rate: 4, Requests: 5, Arrival: ArrivalConstant}
	for i, a := range c.Arrivals() {
		if a != int64(i)*250e6 {
			t.Fatalf("constant arrival %d at %d ns", i, a)
		}
	}
	p := Load{Mode: LoadRate, Rate: 10, Requests: 4000, Arrival: ArrivalPoisson, ArrivalSeed: 7}
	a, b := p.Arrivals(), p.Arrivals()
	p.ArrivalSeed = 8
	other := p.Arrivals()
	if a[0] != 0 || a[3999] != b[3999] || a[3999] == other[3999] {
		t.Fatal("poisson arrivals are not deterministic per seed")
	}
	mean := float64(a[3999]) / 3999 / 1e9
	if math.Abs(mean-0.1) > 0.006 {
		t.Fatalf("mean gap %.4f s; want 0.1 s", mean)
	}
	for i := 1; i < len(a); i++ {
		if a[i] < a[i-1] {
			t.Fatalf("arrival %d before %d", i, i-1)
		}
	}
	if got := (Load{Mode: LoadBatch, Batch: 3}).Arrivals(); len(got) != 3 || got[2] != 0 {
		t.Fatalf("batch arrivals %v", got)
	}
}

func TestLoadValidate(t *testing.T) {
	slo := DefaultSLO
	for _, tc := range []struct {
		l    Load
		want string
	}{
		{Load{Mode: LoadBatch, Goodput: slo}, "--batch 0"},
		{Load{Mode: LoadConcurrency, Concurrency: 2, Goodput: slo}, "--requests 0"},
		{Load{Mode: LoadRate, Rate: -1, Requests: 3, Arrival: ArrivalPoisson, Goodput: slo}, "--request-rate -1"},
		{Load{Mode: LoadRate, Rate: 1, Requests: 3, Arrival: "bursty", Goodput: slo}, `--arrival "bursty"`},
		{Load{Mode: "sweep", Goodput: slo}, `load mode "sweep"`},
		{Load{Mode: LoadBatch, Batch: 2}, "goodput target"},
	} {
		if err := tc.l.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.l, err, tc.want)
		}
	}
	if err := (Load{Mode: LoadConcurrency, Concurrency: 2, Requests: 9, Goodput: slo}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// tokensAt makes a request's tokens at the given times (ms).
func tokensAt(ms ...float64) []driver.Token {
	out := make([]driver.Token, len(ms))
	for i, m := range ms {
		out[i] = driver.Token{ID: int32(i), Index: i, TimeNs: int64(m * 1e6), Bundle: 1}
	}
	return out
}

func TestSummarizeByHand(t *testing.T) {
	l := Load{Mode: LoadBatch, Batch: 3, Goodput: SLO{TTFTS: 0.15, ITLms: 15}}
	outs := []loadOutcome{
		// submitted at 0, first token at 100 ms, then every 10 ms
		{index: 0, arrivalNs: 0, res: driver.Result{SubmitNs: 0, ScheduledNs: 5e6, MeanBatch: 2, MaxBatch: 3}, toks: tokensAt(100, 110, 120, 130)},
		// first token at 200 ms (misses the TTFT target), gaps of 20 ms
		{index: 1, arrivalNs: 0, res: driver.Result{SubmitNs: 1e6, ScheduledNs: -1}, toks: tokensAt(200, 220, 240)},
		{index: 2, arrivalNs: 0, err: errors.New("engine refused it")},
	}
	s := summarize(l, outs, 8)
	if s.Requests != 3 || s.Completed != 2 || s.Failed != 1 || s.OutputTokens != 7 {
		t.Fatalf("%+v", s)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("duration", s.DurationS, 0.24)
	near("tok/s", s.OutputTokPerS, 7/0.24)
	near("req/s", s.ReqPerS, 2/0.24)
	near("ttft p50", s.TTFTS.P50, 0.1)
	near("ttft p99", s.TTFTS.P99, 0.2)
	near("itl p50", s.ITLms.P50, 10) // gaps 10,10,10,20,20
	near("itl max", s.ITLms.Max, 20)
	near("tpot mean", s.TPOTms.Mean, 15)
	near("mean batch", s.MeanBatch, 2)
	// After the last first token (200 ms): 2 tokens by 240 ms.
	near("decode tok/s", s.DecodeTokPerS, 0) // a failed request: no steady state to speak of
	if s.Goodput.Good != 1 || math.Abs(s.Goodput.ReqPerS-1/0.24) > 1e-9 || math.Abs(s.Goodput.Fraction-1.0/3) > 1e-9 {
		t.Fatalf("goodput %+v", s.Goodput)
	}
	rt := outs[0].timing(0, l.Goodput)
	if !rt.Good || rt.QueueS != 0.005 || rt.TTFTS != 0.1 || rt.E2ES != 0.13 || math.Abs(rt.TPOTms-10) > 1e-9 {
		t.Fatalf("timing %+v", rt)
	}
	outs = outs[:2]
	near("decode tok/s", summarize(l, outs, 8).DecodeTokPerS, 2/0.04)

	// Rate mode: due every 100 ms, taken every 300 ms: not met.
	r := Load{Mode: LoadRate, Rate: 10, Requests: 3, Arrival: ArrivalConstant, Goodput: DefaultSLO}
	ro := []loadOutcome{
		{arrivalNs: 0, res: driver.Result{SubmitNs: 0}, toks: tokensAt(50)},
		{arrivalNs: 100e6, res: driver.Result{SubmitNs: 300e6}, toks: tokensAt(350)},
		{arrivalNs: 200e6, res: driver.Result{SubmitNs: 600e6}, toks: tokensAt(650)},
	}
	rs := summarize(r, ro, 1)
	if rs.RateMet == nil || *rs.RateMet || math.Abs(rs.OfferedRate-10) > 1e-9 || math.Abs(rs.AchievedRate-2/0.6) > 1e-9 ||
		!strings.Contains(strings.Join(rs.Notes, " "), "could not be met") {
		t.Fatalf("rate summary %+v", rs)
	}
}

// simEngine is a test double of an engine that runs up to seqs requests at
// once: each takes step per token after a step of prefill, with real
// CLOCK_MONOTONIC times. A prompt starting with failID ends with an engine
// error after 2 tokens; one starting with crashID fails as a crashed engine.
type simEngine struct {
	seqs            int
	step            time.Duration
	failID, crashID int32
	slots           chan struct{}
	live, peak      atomic.Int32
	batches         atomic.Int32
}

func newSim(seqs int, step time.Duration) *simEngine {
	return &simEngine{seqs: seqs, step: step, failID: -1, crashID: -1, slots: make(chan struct{}, seqs)}
}

func (s *simEngine) Info() driver.Info {
	return driver.Info{Engine: "sim", MaxSequences: s.seqs, Batching: []string{"join"}, LoadNs: 1e6}
}
func (s *simEngine) Close() error { return nil }

func (s *simEngine) Generate(ctx context.Context, req driver.Request, on func([]driver.Token)) (driver.Result, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return driver.Result{}, ctx.Err()
	}
	defer func() { <-s.slots }()
	n := s.live.Add(1)
	defer s.live.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	if req.Prompt[0] == s.crashID {
		return driver.Result{}, &driver.EngineFailure{Engine: "sim", Phase: driver.PhasePrefill, Kind: "crashed", Detail: "boom"}
	}
	res := driver.Result{SubmitNs: driver.MonotonicNs(), ScheduledNs: -1}
	time.Sleep(s.step)
	for i := range req.MaxNewTokens {
		if req.Prompt[0] == s.failID && i == 2 {
			res.Finish, res.Detail = driver.FinishError, "simulated failure"
			break
		}
		time.Sleep(s.step)
		if on != nil {
			on([]driver.Token{{ID: int32(i), Index: i, TimeNs: driver.MonotonicNs(), Bundle: 1}})
		}
		res.OutputTokens++
	}
	if res.Finish == driver.FinishNone {
		res.Finish = driver.FinishLength
	}
	res.DoneNs = driver.MonotonicNs()
	return res, nil
}

// GenerateBatch counts batches, then runs the requests concurrently.
func (s *simEngine) GenerateBatch(ctx context.Context, reqs []driver.Request, on func(int, []driver.Token)) ([]driver.Outcome, error) {
	if len(reqs) > s.seqs {
		return nil, &driver.BatchLimitError{Engine: "sim", Batch: len(reqs), Limit: s.seqs}
	}
	s.batches.Add(1)
	out := make([]driver.Outcome, len(reqs))
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Result, out[i].Err = s.Generate(ctx, reqs[i], func(ts []driver.Token) {
				if on != nil {
					on(i, ts)
				}
			})
		}()
	}
	wg.Wait()
	return out, nil
}

func loadPlan(l Load, n int, repeats int) Plan {
	l.Goodput = DefaultSLO
	prompts := make([]Prompt, n)
	for i := range prompts {
		prompts[i], _ = RandomPrompt(8, 1000, uint64(i+1))
		prompts[i].IDs[0] = int32(100 + i)
	}
	return Plan{Label: "sim", Prompt: prompts[0], Prompts: prompts, Workload: Workload{MaxNew: 5, Warmup: 1, Repeats: repeats, Load: &l}}
}

func TestRunLoadBatch(t *testing.T) {
	eng := newSim(4, 2*time.Millisecond)
	eng.failID = 102
	plan := loadPlan(Load{Mode: LoadBatch, Batch: 4}, 4, 2)
	var sunk []Record
	recs, err := Run(context.Background(), eng, plan, func(r Record) error { sunk = append(sunk, r); return nil }, nil)
	if err != nil || len(recs) != 10 || len(sunk) != 10 {
		t.Fatalf("%v, %d records, %d sunk", err, len(recs), len(sunk))
	}
	if eng.batches.Load() != 3 { // the warmup and two repeats, each one batch
		t.Fatalf("%d batches", eng.batches.Load())
	}
	for i, r := range recs[:4] {
		if r.Kind != KindRequest || r.Request == nil || r.Request.Index != i || r.Prompt.IDs[0] != int32(100+i) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i == 2 {
			if r.Status != "error" || !strings.Contains(r.Error, "simulated failure") || r.Result == nil || r.Result.OutputTokens != 2 {
				t.Fatalf("the failed request's record: %+v", r)
			}
			continue
		}
		if r.Status != "ok" || r.Metrics.OutputTokens != 5 || len(r.Output.IDs) != 5 || r.Request.TTFTS <= 0 {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	sum := recs[4]
	if sum.Kind != KindLoad || sum.Summary.Completed != 3 || sum.Summary.Failed != 1 || sum.Summary.OutputTokens != 15 ||
		sum.Summary.OutputTokPerS <= 0 || sum.Summary.Load != "batch=4" {
		t.Fatalf("summary %+v", sum.Summary)
	}
	pts := LoadPoints(recs)
	if len(pts) != 1 || pts[0].Runs != 2 || pts[0].Requests != 8 || pts[0].Failed != 2 || pts[0].Load.Batch != 4 || pts[0].OutTokPerS <= 0 {
		t.Fatalf("load points %+v", pts)
	}
	// A batch larger than the engine's limit is refused before anything runs.
	recs, err = Run(context.Background(), eng, loadPlan(Load{Mode: LoadBatch, Batch: 5}, 5, 1), func(Record) error { return nil }, nil)
	var le *driver.BatchLimitError
	if !errors.As(err, &le) || len(recs) != 0 || !strings.Contains(err.Error(), "at most 4") {
		t.Fatalf("%v, %d records", err, len(recs))
	}
}

func TestRunLoadConcurrency(t *testing.T) {
	eng := newSim(8, time.Millisecond)
	recs, err := Run(context.Background(), eng, loadPlan(Load{Mode: LoadConcurrency, Concurrency: 3, Requests: 12}, 12, 1), func(Record) error { return nil }, nil)
	if err != nil || len(recs) != 13 {
		t.Fatalf("%v, %d records", err, len(recs))
	}
	if p := eng.peak.Load(); p != 3 {
		t.Fatalf("peak of %d requests in flight; want the concurrency, 3", p)
	}
	s := recs[12].Summary
	if s.Completed != 12 || s.WaitS.Max > 0.05 || len(s.Notes) != 0 {
		t.Fatalf("summary %+v", s)
	}
	// More concurrency than the engine runs at once: requests wait, and the run says so.
	eng = newSim(2, time.Millisecond)
	recs, err = Run(context.Background(), eng, loadPlan(Load{Mode: LoadConcurrency, Concurrency: 4, Requests: 8}, 8, 1), func(Record) error { return nil }, nil)
	if err != nil || eng.peak.Load() != 2 || !strings.Contains(strings.Join(recs[8].Summary.Notes, " "), "exceeds the 2 generations") {
		t.Fatalf("%v, peak %d, %+v", err, eng.peak.Load(), recs[8].Summary)
	}
}

func TestRunLoadRate(t *testing.T) {
	// 40 requests/s, each a few ms: the engine keeps up.
	eng := newSim(8, time.Millisecond)
	l := Load{Mode: LoadRate, Rate: 40, Requests: 10, Arrival: ArrivalConstant}
	recs, err := Run(context.Background(), eng, loadPlan(l, 1, 1), func(Record) error { return nil }, nil)
	if err != nil || len(recs) != 11 {
		t.Fatalf("%v, %d records", err, len(recs))
	}
	s := recs[10].Summary
	if s.RateMet == nil || !*s.RateMet || math.Abs(s.OfferedRate-40) > 1e-6 || math.Abs(s.AchievedRate-40) > 4 {
		t.Fatalf("summary %+v", s)
	}
	for i, r := range recs[:10] {
		if math.Abs(r.Request.ArrivalS-float64(i)*0.025) > 1e-9 {
			t.Fatalf("request %d arrived at %v s", i, r.Request.ArrivalS)
		}
	}
	// One request at a time, 60 ms each, asked for every 10 ms: the rate cannot be met.
	slow := newSim(1, 10*time.Millisecond)
	l = Load{Mode: LoadRate, Rate: 100, Requests: 5, Arrival: ArrivalConstant}
	recs, err = Run(context.Background(), slow, loadPlan(l, 1, 1), func(Record) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = recs[5].Summary
	if s.RateMet == nil || *s.RateMet || s.AchievedRate > 30 || !strings.Contains(strings.Join(s.Notes, " "), "could not be met") ||
		recs[4].Request.WaitS < 0.1 {
		t.Fatalf("summary %+v, last wait %v", s, recs[4].Request.WaitS)
	}
}

func TestRunLoadCrashEndsTheRun(t *testing.T) {
	eng := newSim(4, time.Millisecond)
	eng.crashID = 101
	var sunk []Record
	recs, err := Run(context.Background(), eng, loadPlan(Load{Mode: LoadConcurrency, Concurrency: 2, Requests: 4}, 4, 3),
		func(r Record) error { sunk = append(sunk, r); return nil }, nil)
	var f *driver.EngineFailure
	if !errors.As(err, &f) || len(recs) != 5 || len(sunk) != 5 {
		t.Fatalf("%v, %d records", err, len(recs))
	}
	if recs[1].Status != "error" || !strings.Contains(recs[1].Error, "crashed") || recs[4].Summary.Failed != 1 {
		t.Fatalf("%+v\n%+v", recs[1], recs[4].Summary)
	}
}
