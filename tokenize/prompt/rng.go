package prompt

import "github.com/lmdrive/lmdrive/driver/splitmix"

// rng draws the text's choices from SplitMix64, so a seed gives the same
// text on every Go version and platform.
type rng struct{ s *splitmix.Stream }

func newRNG(seed uint64) *rng { return &rng{s: splitmix.New(seed)} }

func (r *rng) next() uint64 { return r.s.Next() }

// intn returns a number in [0, n); n must be positive. The modulo bias is
// below 2^-40 for the small n used here.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// pick returns a random element of list.
func pick[T any](r *rng, list []T) T { return list[r.intn(len(list))] }

// chance returns true with probability num/den.
func (r *rng) chance(num, den int) bool { return r.intn(den) < num }
