package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
)

// Filter keeps the records a report is about. Empty fields keep everything;
// several values of one field keep records matching any of them.
type Filter struct {
	// Runs are run ids or their prefixes.
	Runs []string
	// Engines match the engine name, its backend or the row label's start.
	Engines []string
	// Models match any part of the model name, case-insensitively.
	Models []string
	// Since keeps records written at or after it (zero: no limit).
	Since time.Time
}

// ParseSince reads --since: a date (2026-12-01), an RFC 3339 time, or a
// duration back from now (36h, 7d).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a date (2026-12-01), a time (2026-12-01T15:04:05Z) or how long ago (36h, 7d)", s)
}

// Keep reports whether r passes the filter.
func (f Filter) Keep(r bench.Record) bool {
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if len(f.Runs) > 0 && !anyMatch(f.Runs, func(v string) bool { return v != "" && strings.HasPrefix(r.RunID, v) }) {
		return false
	}
	if len(f.Engines) > 0 && !anyMatch(f.Engines, func(v string) bool {
		v = strings.ToLower(v)
		return v == strings.ToLower(r.Engine.Engine) || v == strings.ToLower(r.Engine.Backend) ||
			strings.HasPrefix(strings.ToLower(r.Label), v)
	}) {
		return false
	}
	if len(f.Models) > 0 && !anyMatch(f.Models, func(v string) bool {
		v = strings.ToLower(v)
		return strings.Contains(strings.ToLower(r.Workload.Model), v) || strings.Contains(strings.ToLower(r.Engine.Model), v)
	}) {
		return false
	}
	return true
}

// Apply returns the records that pass.
func (f Filter) Apply(recs []bench.Record) []bench.Record {
	var out []bench.Record
	for _, r := range recs {
		if f.Keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func anyMatch(vals []string, match func(string) bool) bool {
	for _, v := range vals {
		if match(v) {
			return true
		}
	}
	return false
}
