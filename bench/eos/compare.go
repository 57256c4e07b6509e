package eos

import "fmt"

// Divergence is where two engines' outputs for the same prompt part.
type Divergence struct {
	SamePrompt bool   `json:"same_prompt"`
	Step       int    `json:"step"` // -1: identical over the shorter length
	A, B       int32  `json:"-"`
	LenA, LenB int    `json:"-"`
	Summary    string `json:"summary"`
}

// Compare aligns two outputs generated from prompts with hashes hashA and
// hashB and finds the first step where they differ.
func Compare(hashA, hashB string, a, b []int32) Divergence {
	d := Divergence{SamePrompt: hashA == hashB, Step: -1, LenA: len(a), LenB: len(b)}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			d.Step, d.A, d.B = i, a[i], b[i]
			break
		}
	}
	switch {
	case !d.SamePrompt:
		d.Summary = fmt.Sprintf("the prompts differ (%s vs %s): the runs are not comparable token by token", hashA, hashB)
	case d.Step >= 0:
		d.Summary = fmt.Sprintf("identical for %d steps, then A chose %d and B chose %d (A has %d tokens, B %d)", d.Step, d.A, d.B, len(a), len(b))
	case len(a) == len(b):
		d.Summary = fmt.Sprintf("identical: %d tokens each", len(a))
	default:
		d.Summary = fmt.Sprintf("identical for the %d tokens both have; A has %d, B %d", min(len(a), len(b)), len(a), len(b))
	}
	return d
}
