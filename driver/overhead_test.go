package driver

import (
	"context"
	"slices"
	"testing"
)

// BenchmarkTokenPath measures what lmdrive's own path costs per token: the
// ref engine in zero-compute calibration mode emits tokens with no model
// work, so the time per token is the engine loop plus the Go ↔ native
// hand-over (in-process) and, for "runner", the JSON Lines protocol too.
// Reported: ns/token as Go sees delivery, and engine-step-ns, the median
// gap between tokens in the engine's own timestamps.
func BenchmarkTokenPath(b *testing.B) {
	const tokensPerOp = 20000
	run := func(b *testing.B, eng Engine) {
		req := Request{Prompt: []int32{1}, MaxNewTokens: tokensPerOp, IgnoreEOS: true}
		var gaps []int64
		b.ResetTimer()
		for range b.N {
			var last int64
			gaps = gaps[:0]
			_, err := eng.Generate(context.Background(), req, func(ts []Token) {
				for _, t := range ts {
					if last != 0 {
						gaps = append(gaps, t.TimeNs-last)
					}
					last = t.TimeNs
				}
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokensPerOp), "ns/token")
		b.ReportMetric(float64(medianInt64(gaps)), "engine-step-ns")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("in-process", func(b *testing.B) {
		lib := refLibraryB(b)
		eng, err := NewNativeEngine(lib, "ref", `{"model":"random:tiny","calibrate":true}`)
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		run(b, eng)
	})
	b.Run("runner", func(b *testing.B) {
		lib := refLibraryB(b)
		argv, env := testRunner()
		eng, err := StartRunner(context.Background(), RunnerOptions{Command: argv, Env: env, Engine: "ref", Library: lib.Path(),
			Config: []byte(`{"model":"random:tiny","calibrate":true}`)})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		run(b, eng)
	})
}

func refLibraryB(b *testing.B) *Library {
	path, err := DefaultSearch("").Find("ref", FileExists)
	if err != nil {
		path, err = (Search{WorkDir: ".."}).Find("ref", FileExists)
	}
	if err != nil {
		b.Skip("reference engine library not built (make native)")
	}
	lib, err := OpenLibrary(path)
	if err != nil {
		b.Fatal(err)
	}
	return lib
}

func medianInt64(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
