package bench

import (
	"fmt"
	"math"
	"slices"

	"github.com/lmdrive/lmdrive/driver"
)

// RequestTiming is one request of a load run: when it arrived and how long
// its user waited. Every time is CLOCK_MONOTONIC, as the engine's own.
type RequestTiming struct {
	Index int `json:"index"`
	// ArrivalS is when the request arrived, in seconds after the run's
	// first arrival: when it was due (rate), or issued (batch, concurrency).
	ArrivalS float64 `json:"arrival_s"`
	// WaitS is arrival → the engine took it (start): time spent waiting for
	// a place while the engine ran all the generations it runs at once.
	WaitS float64 `json:"wait_s"`
	// QueueS is start → the engine took it into its batch (prefill began);
	// -1 when the engine does not say.
	QueueS float64 `json:"queue_s"`
	// TTFTS is arrival → first token and E2ES arrival → last token: the
	// latencies the request's user sees.
	TTFTS float64 `json:"ttft_s"`
	E2ES  float64 `json:"e2e_s"`
	// TPOTms is the request's mean inter-token latency: (last − first) /
	// (tokens − 1), in ms; 0 with fewer than two tokens.
	TPOTms float64 `json:"tpot_ms"`
	// MeanBatch and MaxBatch are what the engine reported: sequences per
	// step while this request got its tokens.
	MeanBatch float64 `json:"mean_batch,omitempty"`
	MaxBatch  int     `json:"max_batch,omitempty"`
	// Good: the request completed within the run's goodput target.
	Good bool `json:"good"`
}

// LoadSummary aggregates one load run (one repeat): every request, what the
// engine delivered in all, and the latency distributions across requests.
type LoadSummary struct {
	Load      string `json:"load"` // Load.String()
	Requests  int    `json:"requests"`
	Completed int    `json:"completed"`
	Failed    int    `json:"failed"`
	// DurationS is the run's window: first arrival → last token.
	DurationS     float64 `json:"duration_s"`
	OutputTokens  int     `json:"output_tokens"`
	OutputTokPerS float64 `json:"output_tok_s"`
	ReqPerS       float64 `json:"req_s"`
	// DecodeTokPerS (batch mode) is the rate once every request has its
	// first token: tokens after the last first token, over the time from it
	// to the last token.
	DecodeTokPerS float64 `json:"decode_tok_s,omitempty"`
	TTFTS         Dist    `json:"ttft_s"`
	ITLms         Dist    `json:"itl_ms"` // every gap between observations, pooled over requests
	TPOTms        Dist    `json:"tpot_ms"`
	E2ES          Dist    `json:"e2e_s"`
	WaitS         Dist    `json:"wait_s"`
	Goodput       Goodput `json:"goodput"`
	// Rate mode: the schedule's own rate, (n − 1) / (last − first arrival),
	// and the rate at which the engine took the requests; met when the
	// engine kept up within 5%.
	OfferedRate  float64  `json:"offered_rate,omitempty"`
	AchievedRate float64  `json:"achieved_rate,omitempty"`
	RateMet      *bool    `json:"rate_met,omitempty"`
	MeanBatch    float64  `json:"mean_batch,omitempty"`
	MaxBatch     int      `json:"max_batch,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// Dist is a distribution over requests (or gaps): nearest-rank percentiles,
// mean and maximum; N values went into it.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99), Mean: sum / float64(len(s)), Max: s[len(s)-1]}
}

// Goodput is how many completed requests met the target, and at what rate.
type Goodput struct {
	SLO
	Good     int     `json:"good"`
	ReqPerS  float64 `json:"req_s"`
	Fraction float64 `json:"fraction"` // good / requests
}

// loadOutcome is what became of one request of a load run.
type loadOutcome struct {
	index     int
	arrivalNs int64 // CLOCK_MONOTONIC
	res       driver.Result
	toks      []driver.Token
	err       error
}

// failed reports a request that did not complete: an error, or a result the
// engine ended with an error.
func (o loadOutcome) failed() bool { return o.err != nil || o.res.Finish == driver.FinishError }

// failure is the error text of a failed request.
func (o loadOutcome) failure() string {
	if o.err != nil {
		return o.err.Error()
	}
	return "the engine ended the request with an error: " + o.res.Detail
}

// timing derives a request's latencies; t0 is the run's first arrival.
func (o loadOutcome) timing(t0 int64, slo SLO) RequestTiming {
	rt := RequestTiming{Index: o.index, ArrivalS: sec(o.arrivalNs - t0), QueueS: -1, MeanBatch: o.res.MeanBatch, MaxBatch: o.res.MaxBatch}
	if o.err == nil {
		rt.WaitS = sec(max(o.res.SubmitNs-o.arrivalNs, 0))
		if o.res.ScheduledNs >= 0 && o.res.ScheduledNs >= o.res.SubmitNs {
			rt.QueueS = sec(o.res.ScheduledNs - o.res.SubmitNs)
		}
	}
	if n := len(o.toks); n > 0 {
		first, last := o.toks[0].TimeNs, o.toks[n-1].TimeNs
		rt.TTFTS, rt.E2ES = sec(first-o.arrivalNs), sec(last-o.arrivalNs)
		if n > 1 {
			rt.TPOTms = float64(last-first) / 1e6 / float64(n-1)
		}
	}
	rt.Good = !o.failed() && len(o.toks) > 0 && rt.TTFTS <= slo.TTFTS && rt.TPOTms <= slo.ITLms
	return rt
}

// summarize aggregates the outcomes of one run. sequences is how many
// generations the engine runs at once (for the notes).
func summarize(l Load, outs []loadOutcome, sequences int) LoadSummary {
	s := LoadSummary{Load: l.String(), Requests: len(outs), Goodput: Goodput{SLO: l.Goodput}}
	if len(outs) == 0 {
		return s
	}
	t0, tEnd := outs[0].arrivalNs, int64(math.MinInt64)
	for _, o := range outs {
		t0 = min(t0, o.arrivalNs)
	}
	var ttft, tpot, e2e, wait, gaps []float64
	var lastFirst int64 = math.MinInt64
	batchSum, batchN := 0.0, 0
	for _, o := range outs {
		if n := len(o.toks); n > 0 {
			tEnd = max(tEnd, o.toks[n-1].TimeNs)
		} else if o.res.DoneNs > 0 {
			tEnd = max(tEnd, o.res.DoneNs)
		}
		if o.failed() {
			s.Failed++
			continue
		}
		s.Completed++
		rt := o.timing(t0, l.Goodput)
		s.OutputTokens += len(o.toks)
		wait = append(wait, rt.WaitS)
		if len(o.toks) > 0 {
			ttft, e2e = append(ttft, rt.TTFTS), append(e2e, rt.E2ES)
			lastFirst = max(lastFirst, o.toks[0].TimeNs)
		}
		if len(o.toks) > 1 {
			tpot = append(tpot, rt.TPOTms)
		}
		for i := 1; i < len(o.toks); i++ {
			if d := o.toks[i].TimeNs - o.toks[i-1].TimeNs; d != 0 {
				gaps = append(gaps, float64(d)/1e6)
			}
		}
		if rt.Good {
			s.Goodput.Good++
		}
		if o.res.MeanBatch > 0 {
			batchSum += o.res.MeanBatch
			batchN++
		}
		s.MaxBatch = max(s.MaxBatch, o.res.MaxBatch)
	}
	if tEnd > t0 {
		s.DurationS = sec(tEnd - t0)
		s.OutputTokPerS = float64(s.OutputTokens) / s.DurationS
		s.ReqPerS = float64(s.Completed) / s.DurationS
		s.Goodput.ReqPerS = float64(s.Goodput.Good) / s.DurationS
	}
	s.Goodput.Fraction = float64(s.Goodput.Good) / float64(len(outs))
	s.TTFTS, s.ITLms, s.TPOTms, s.E2ES, s.WaitS = distOf(ttft), distOf(gaps), distOf(tpot), distOf(e2e), distOf(wait)
	if batchN > 0 {
		s.MeanBatch = batchSum / float64(batchN)
	}
	if l.Mode == LoadBatch && tEnd > lastFirst && s.Completed == len(outs) {
		after := 0
		for _, o := range outs {
			for _, t := range o.toks {
				if t.TimeNs > lastFirst {
					after++
				}
			}
		}
		s.DecodeTokPerS = float64(after) / sec(tEnd-lastFirst)
	}
	s.rateNotes(l, outs)
	if l.Mode == LoadConcurrency && l.Concurrency > sequences {
		s.Notes = append(s.Notes, fmt.Sprintf("concurrency %d exceeds the %s the engine runs at once: requests waited for a place (wait p50 %.3f s)",
			l.Concurrency, plural(sequences, "generation"), s.WaitS.P50))
	}
	return s
}

// rateNotes compares, in rate mode, the schedule's rate with the rate at
// which the engine took the requests and the rate at which it completed them.
func (s *LoadSummary) rateNotes(l Load, outs []loadOutcome) {
	if l.Mode != LoadRate || len(outs) < 2 {
		return
	}
	firstArr, lastArr := outs[0].arrivalNs, outs[0].arrivalNs
	firstSub, lastSub := int64(math.MaxInt64), int64(math.MinInt64)
	for _, o := range outs {
		firstArr, lastArr = min(firstArr, o.arrivalNs), max(lastArr, o.arrivalNs)
		if o.err == nil {
			firstSub, lastSub = min(firstSub, o.res.SubmitNs), max(lastSub, o.res.SubmitNs)
		}
	}
	n := float64(len(outs) - 1)
	if lastArr > firstArr {
		s.OfferedRate = n / sec(lastArr-firstArr)
	}
	if lastSub > firstSub {
		s.AchievedRate = n / sec(lastSub-firstSub)
	}
	if s.OfferedRate == 0 || s.AchievedRate == 0 {
		return
	}
	met := s.AchievedRate >= 0.95*s.OfferedRate
	s.RateMet = &met
	if !met {
		s.Notes = append(s.Notes, fmt.Sprintf("the rate could not be met: requests were due at %.3g/s but the engine took them at %.3g/s (its places were full; wait p50 %.3f s)",
			s.OfferedRate, s.AchievedRate, s.WaitS.P50))
	}
	if s.ReqPerS > 0 && s.ReqPerS < 0.9*s.OfferedRate {
		s.Notes = append(s.Notes, fmt.Sprintf("requests completed at %.3g/s, below the %.3g/s offered: the engine is saturated at this rate", s.ReqPerS, s.OfferedRate))
	}
}

// plural writes "1 request", "2 requests".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
