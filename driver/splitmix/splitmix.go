// Package splitmix is the one SplitMix64 generator of lmdrive. Random
// weights (driver/checkpoint and the ref engine's random:<preset>),
// synthesized prompt text (tokenize/prompt) and random prompt ids (bench)
// all draw from it, so a seed means the same numbers everywhere, on every Go
// version and platform (math/rand's streams are not promised to stay fixed).
package splitmix

// Golden is the generator's increment, 2^64 divided by the golden ratio.
const Golden = 0x9E3779B97F4A7C15

// Mix is one step of SplitMix64: a well-mixed 64-bit value for each input.
// Mix(x) is the value a generator whose state was x returns next.
func Mix(x uint64) uint64 {
	z := x + Golden
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Stream is a SplitMix64 generator: a sequence of Mix over a counter.
type Stream struct{ state uint64 }

// New starts a stream at seed.
func New(seed uint64) *Stream { return &Stream{state: seed} }

// Next returns the next value.
func (s *Stream) Next() uint64 {
	v := Mix(s.state)
	s.state += Golden
	return v
}
