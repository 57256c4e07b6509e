package eos

import (
	"fmt"
	"io"
	"strings"
)

// Sample is one investigated generation: the run, its steps and verdict,
// and the control runs if any were made.
type Sample struct {
	Index    int       `json:"index"`
	Prompt   int       `json:"prompt_tokens"`
	Hash     string    `json:"prompt_hash"`
	Finish   string    `json:"finish"`
	Verdict  Verdict   `json:"verdict"`
	Output   []int32   `json:"output_ids"`
	Steps    []Step    `json:"-"`
	Controls []Control `json:"controls,omitempty"`
}

// Control is a control run: the same prompt with one setting changed.
type Control struct {
	Name      string   `json:"name"` // "eos-on" or "forced-length"
	Generated int      `json:"generated"`
	Finish    string   `json:"finish"`
	PStop     *float64 `json:"p_stop,omitempty"`
	Summary   string   `json:"summary"`
}

// Report is the whole investigation, written as JSON and as text.
type Report struct {
	Engine    string   `json:"engine"`
	Model     string   `json:"model"`
	Run       string   `json:"run_id,omitempty"` // the saved run explained (--record)
	Audit     Audit    `json:"audit"`
	Effective string   `json:"effective_config"`
	Log       []LogHit `json:"log_hits,omitempty"`
	Samples   []Sample `json:"samples"`
}

// Early reports whether any sample stopped early.
func (r Report) Early() bool {
	for _, s := range r.Samples {
		if s.Verdict.Early {
			return true
		}
	}
	return false
}

// WriteText prints the report for a person: the audit, then a line per
// sample, then each early sample's evidence and next step.
func (r Report) WriteText(w io.Writer, pieces func(int32) string) {
	fmt.Fprintf(w, "eos report  engine=%s  model=%s\n", r.Engine, r.Model)
	fmt.Fprintf(w, "stop universe (ids that can end a request, and where they come from):\n")
	if len(r.Audit.Universe) == 0 {
		fmt.Fprintf(w, "  (none found)\n")
	}
	for _, s := range r.Audit.Universe {
		fmt.Fprintf(w, "  %-7d %-16s %s\n", s.ID, quoteOr(pieces, s.ID, s.Piece), strings.Join(s.Sources, ", "))
	}
	fmt.Fprintf(w, "limits:")
	if len(r.Audit.Limits) == 0 {
		fmt.Fprintf(w, " none known")
	}
	for _, l := range r.Audit.Limits {
		fmt.Fprintf(w, "  %s=%d (%s)", l.Name, l.Value, l.Source)
	}
	fmt.Fprintf(w, "\npredicted cap: %d of %d", r.Audit.PredictedCap, r.Audit.Requested)
	if r.Audit.Binding != "" {
		fmt.Fprintf(w, " — bound by %s", r.Audit.Binding)
	}
	fmt.Fprintf(w, "\neffective: %s\n\n", r.Effective)

	fmt.Fprintf(w, "%-6s %6s %6s %-9s %-24s %9s  %s\n", "sample", "asked", "got", "finish", "last token", "P(stop)", "verdict")
	for _, s := range r.Samples {
		last, peos := "-", "-"
		if n := len(s.Output); n > 0 {
			last = fmt.Sprintf("%d %s", s.Output[n-1], quoteOr(pieces, s.Output[n-1], ""))
			if st := s.Steps; len(st) == n && st[n-1].PStop != nil {
				peos = fmt.Sprintf("%.3g", *st[n-1].PStop)
			}
		}
		fmt.Fprintf(w, "%-6d %6d %6d %-9s %-24s %9s  %s\n", s.Index, r.Audit.Requested, len(s.Output), s.Finish, trunc(last, 24), peos, s.Verdict.Cause)
	}
	for _, s := range r.Samples {
		if !s.Verdict.Early {
			continue
		}
		fmt.Fprintf(w, "\nsample %d: %s — %s\n", s.Index, s.Verdict.Cause, s.Verdict.Detail)
		for _, e := range s.Verdict.Evidence {
			fmt.Fprintf(w, "  evidence: %s\n", e)
		}
		for _, c := range s.Controls {
			fmt.Fprintf(w, "  control %s: %s\n", c.Name, c.Summary)
		}
		if s.Verdict.Cause == CauseUnexplained {
			from := max(0, len(s.Steps)-16)
			for _, st := range s.Steps[from:] {
				fmt.Fprintf(w, "  step %4d  id %-7d %-14q in_stop_set=%v\n", st.Step, st.ID, st.Piece, st.InStopSet)
			}
		}
		fmt.Fprintf(w, "  next: %s\n", s.Verdict.Next)
	}
}

func quoteOr(pieces func(int32) string, id int32, fallback string) string {
	if fallback == "" && pieces != nil {
		fallback = pieces(id)
	}
	if fallback == "" {
		return ""
	}
	return fmt.Sprintf("%q", fallback)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
