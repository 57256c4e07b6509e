package bench

import (
	"fmt"
	"strings"
)

// LoadPoint is one load level of one engine and workload: the medians over
// its repeats of each run's figures. Sweeps plot these (throughput against
// latency across levels).
type LoadPoint struct {
	Label       string   `json:"label"`
	Load        Load     `json:"load"`
	PromptToks  int      `json:"prompt_tokens"`
	MaxNew      int      `json:"max_new_tokens"`
	Runs        int      `json:"runs"`
	Requests    int      `json:"requests"`
	Failed      int      `json:"failed"`
	OutTokPerS  float64  `json:"output_tok_s"`
	ReqPerS     float64  `json:"req_s"`
	DecodeTokS  float64  `json:"decode_tok_s,omitempty"`
	TTFTS       Dist     `json:"ttft_s"`
	ITLms       Dist     `json:"itl_ms"`
	E2ES        Dist     `json:"e2e_s"`
	GoodputReqS float64  `json:"goodput_req_s"`
	Notes       []string `json:"notes,omitempty"`
}

// LoadPoints groups the load summaries of recs by label, workload and
// level, in first-seen order.
func LoadPoints(recs []Record) []LoadPoint {
	var order []string
	groups := map[string][]Record{}
	for _, r := range recs {
		if r.Kind != KindLoad || r.Summary == nil || r.Workload.Load == nil {
			continue
		}
		key := fmt.Sprintf("%s|%s|%d|%d|%s", r.Label, r.Workload.Model, r.Prompt.Tokens, r.Workload.MaxNew, r.Summary.Load)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], r)
	}
	out := make([]LoadPoint, 0, len(order))
	for _, k := range order {
		g := groups[k]
		p := LoadPoint{Label: g[0].Label, Load: *g[0].Workload.Load, PromptToks: g[0].Prompt.Tokens, MaxNew: g[0].Workload.MaxNew, Runs: len(g)}
		med := func(get func(*LoadSummary) float64) float64 {
			xs := make([]float64, len(g))
			for i, r := range g {
				xs[i] = get(r.Summary)
			}
			return Summarize(xs).Median
		}
		medDist := func(get func(*LoadSummary) Dist) Dist {
			return Dist{
				N:    int(med(func(s *LoadSummary) float64 { return float64(get(s).N) })),
				P50:  med(func(s *LoadSummary) float64 { return get(s).P50 }),
				P90:  med(func(s *LoadSummary) float64 { return get(s).P90 }),
				P99:  med(func(s *LoadSummary) float64 { return get(s).P99 }),
				Mean: med(func(s *LoadSummary) float64 { return get(s).Mean }),
				Max:  med(func(s *LoadSummary) float64 { return get(s).Max }),
			}
		}
		p.OutTokPerS = med(func(s *LoadSummary) float64 { return s.OutputTokPerS })
		p.ReqPerS = med(func(s *LoadSummary) float64 { return s.ReqPerS })
		p.DecodeTokS = med(func(s *LoadSummary) float64 { return s.DecodeTokPerS })
		p.GoodputReqS = med(func(s *LoadSummary) float64 { return s.Goodput.ReqPerS })
		p.TTFTS = medDist(func(s *LoadSummary) Dist { return s.TTFTS })
		p.ITLms = medDist(func(s *LoadSummary) Dist { return s.ITLms })
		p.E2ES = medDist(func(s *LoadSummary) Dist { return s.E2ES })
		// A note of each kind once: runs differ in their figures, not in what they say.
		seen := map[string]bool{}
		for _, r := range g {
			p.Requests += r.Summary.Requests
			p.Failed += r.Summary.Failed
			for _, n := range r.Summary.Notes {
				kind, _, _ := strings.Cut(n, ":")
				if !seen[kind] {
					seen[kind] = true
					p.Notes = append(p.Notes, n)
				}
			}
		}
		out = append(out, p)
	}
	return out
}
