package bench

import (
	"math"
	"slices"
)

// Summary of one metric over the measured repeats.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	// CI95 is the 95% confidence interval of the mean (Student's t); with
	// one sample it is the sample itself.
	CI95 [2]float64 `json:"ci95"`
}

// Summarize computes the summary of xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(n)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	out := Summary{N: n, Median: med, Min: s[0], Max: s[n-1], Mean: mean, CI95: [2]float64{mean, mean}}
	if n > 1 {
		ss := 0.0
		for _, x := range s {
			ss += (x - mean) * (x - mean)
		}
		half := tQuantile975(n-1) * math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
		out.CI95 = [2]float64{mean - half, mean + half}
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

// tQuantile975 is the 97.5% quantile of Student's t with df degrees of freedom.
func tQuantile975(df int) float64 {
	table := []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df >= 1 && df <= len(table) {
		return table[df-1]
	}
	return 1.96
}
