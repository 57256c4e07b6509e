package bench

import (
	"fmt"
	"math"
	"slices"

	"golang.org/x/perf/benchmath"
)

// Confidence is the level asked of every interval of the median.
const Confidence = 0.95

// Summary of one metric over the measured repeats: the median and an
// interval of the median. The interval comes from order statistics
// (benchstat's method, golang.org/x/perf/benchmath): it assumes nothing
// about the distribution, always lies between the smallest and the largest
// repeat, so it never leaves the range of a positive quantity, and its
// width comes from the data, never from a table of t values.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Interval is absent with one repeat: one sample has no interval.
	Interval *Interval `json:"interval,omitempty"`
}

// Interval of the median with its exact confidence. From 6 repeats on it
// is at least Confidence; 2 to 5 repeats cannot reach 95% and give their
// range, which covers the median with 50%, 75%, 87.5% and 93.75%.
type Interval struct {
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	Confidence float64 `json:"confidence"`
}

// Summarize computes the summary of xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	out := Summary{N: n, Median: med, Min: s[0], Max: s[n-1]}
	if n < 2 {
		return out
	}
	// The widest interval of n samples, [min, max], covers the median with
	// 1 − 2·0.5ⁿ; ask no more than that so small n still get their range.
	level := Confidence
	if reach := 1 - math.Pow(0.5, float64(n-1)); reach < level {
		level = reach - 1e-9
	}
	sum := benchmath.AssumeNothing.Summary(benchmath.NewSample(s, &benchmath.DefaultThresholds), level)
	if !math.IsInf(sum.Lo, 0) && !math.IsInf(sum.Hi, 0) {
		out.Interval = &Interval{Lo: sum.Lo, Hi: sum.Hi, Confidence: sum.Confidence}
	}
	return out
}

// Spread is (max − min) / median: how far apart the repeats were.
func (s Summary) Spread() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / math.Abs(s.Median)
}

// IntervalText writes the interval for a person with the verb of format
// ("%.2f"): "[12.40, 12.52] at 75%", or why there is none.
func (s Summary) IntervalText(format string) string {
	switch {
	case s.N == 0:
		return "no samples"
	case s.Interval == nil:
		return "no interval from 1 repeat"
	}
	return fmt.Sprintf("["+format+", "+format+"] at %s", s.Interval.Lo, s.Interval.Hi, Percent(s.Interval.Confidence))
}

// Percent writes a confidence level without needless digits: 0.75 → "75%",
// 0.9375 → "93.75%".
func Percent(level float64) string {
	return fmt.Sprintf("%s%%", trimFloat(100*level, 2))
}

func trimFloat(v float64, digits int) string {
	s := fmt.Sprintf("%.*f", digits, v)
	for len(s) > 0 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
