//go:build !unix

package cuda

import "time"

// processStart anchors MonotonicNanos where CLOCK_MONOTONIC does not exist.
var processStart = time.Now()

// MonotonicNanos returns nanoseconds on Go's monotonic clock since the process
// started. Without CLOCK_MONOTONIC these timestamps are only comparable with
// each other, not with timestamps taken in native code.
func MonotonicNanos() int64 { return int64(time.Since(processStart)) }
