package splitmix

import "testing"

// The reference values are splitmix64's published outputs for seed 0 (the
// first one is also what the ref engine's C++ generator is tested against).
func TestKnownValues(t *testing.T) {
	s := New(0)
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := s.Next(); got != want {
			t.Fatalf("value %d = %#x, want %#x", i, got, want)
		}
	}
	if Mix(0) != 0xe220a8397b1dcdaf {
		t.Fatalf("Mix(0) = %#x", Mix(0))
	}
}

// Mix(seed + k·Golden) is the k-th value of a stream started at seed: the
// two ways of drawing (by index, as weights do; in order, as text does) agree.
func TestIndexedEqualsSequential(t *testing.T) {
	s := New(42)
	for k := uint64(0); k < 100; k++ {
		if got, want := s.Next(), Mix(42+k*Golden); got != want {
			t.Fatalf("k=%d: %#x vs %#x", k, got, want)
		}
	}
}
