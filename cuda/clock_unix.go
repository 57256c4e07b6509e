//go:build unix

package cuda

import "golang.org/x/sys/unix"

// MonotonicNanos reads CLOCK_MONOTONIC in nanoseconds: the clock engines use
// for token timestamps, so samples and tokens share one time axis. Go's time
// package uses the same clock internally but does not expose its value.
func MonotonicNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// clock_gettime(CLOCK_MONOTONIC) cannot fail on a supported kernel;
		// a zero here would show up as an obviously wrong timestamp.
		return 0
	}
	return ts.Nano()
}
