//go:build unix

package cuda

import (
	"testing"

	"golang.org/x/sys/unix"
)

// MonotonicNanos is CLOCK_MONOTONIC itself, not merely a clock that runs at
// its rate: engine token times are compared with it value for value.
func TestMonotonicNanosIsClockMonotonic(t *testing.T) {
	read := func() int64 {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		return ts.Nano()
	}
	before := read()
	got := MonotonicNanos()
	after := read()
	if got < before || got > after {
		t.Fatalf("MonotonicNanos %d lies outside CLOCK_MONOTONIC readings %d … %d", got, before, after)
	}
}
