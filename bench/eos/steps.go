package eos

import (
	"math"
	"slices"

	"github.com/lmdrive/lmdrive/driver"
)

// Step is one generated token as the instrumented run saw it.
type Step struct {
	Step      int                      `json:"step"`
	ID        int32                    `json:"id"`
	Piece     string                   `json:"piece,omitempty"`
	InStopSet bool                     `json:"in_stop_set"`
	Sources   []string                 `json:"sources,omitempty"`
	Logprob   driver.Logprob           `json:"logprob"`
	Watched   map[int32]driver.Logprob `json:"watched_logprobs,omitempty"`
	PStop     *float64                 `json:"p_stop,omitempty"`
	Remaining int                      `json:"remaining"`
	TimeMs    float64                  `json:"t_ms"`
}

// Steps turns a run's tokens into per-step records: the piece, whether the
// id could end the run, the watched ids' log-probabilities, the budget left.
func Steps(r Run, a Audit, pieces func(int32) string) []Step {
	budget := r.Requested
	if e := r.Result.MaxNewEffective; e > 0 && e < budget {
		budget = e
	}
	out := make([]Step, len(r.Tokens))
	for i, t := range r.Tokens {
		s := Step{Step: i, ID: t.ID, InStopSet: slices.Contains(r.Result.StopIDs, t.ID), Sources: a.Sources(t.ID),
			Logprob: t.Logprob, Remaining: budget - i - 1, TimeMs: float64(t.TimeNs-r.Result.SubmitNs) / 1e6}
		if pieces != nil {
			s.Piece = pieces(t.ID)
		}
		if len(t.Watched) == len(r.WatchIDs) && len(t.Watched) > 0 {
			s.Watched = make(map[int32]driver.Logprob, len(t.Watched))
			p, ok := 0.0, true
			for j, lp := range t.Watched {
				s.Watched[r.WatchIDs[j]] = lp
				ok = ok && lp.Valid()
				p += math.Exp(float64(lp))
			}
			if ok {
				s.PStop = &p
			}
		}
		out[i] = s
	}
	return out
}
