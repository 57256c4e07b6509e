package main

import (
	"strings"
	"testing"
)

// Bad load flags are refused with a line that names the flag, before any
// engine loads.
func TestRunRefusesBadLoadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--batch", "4", "--concurrency", "2"}, "--batch and --concurrency are different load modes"},
		{[]string{"--request-rate", "2"}, "--requests 0"},
		{[]string{"--request-rate", "0", "--requests", "4"}, "--request-rate 0"},
		{[]string{"--request-rate", "2", "--requests", "4", "--arrival", "bursty"}, `--arrival "bursty"`},
		{[]string{"--requests", "4"}, "--requests belongs to a load mode"},
		{[]string{"--batch", "2", "--requests", "4"}, "--requests does not apply to --batch"},
		{[]string{"--concurrency", "2", "--arrival", "constant"}, "apply to --request-rate only"},
		{[]string{"--batch", "2", "--goodput-ttft", "0s"}, "goodput target"},
	} {
		_, _, err := lmdrive(t, append([]string{"run", "--lib-path", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.args, err, tc.want)
		}
	}
}
