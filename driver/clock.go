package driver

import "golang.org/x/sys/unix"

// MonotonicNs reads CLOCK_MONOTONIC in nanoseconds: the clock every engine
// library stamps tokens with (lmd_api.now_ns), the same in every process of
// the host, so times taken here and in a runner child compare.
func MonotonicNs() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for CLOCK_MONOTONIC on Linux
	return ts.Nano()
}
