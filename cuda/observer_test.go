package cuda

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestObserverRecordsEachGeneration(t *testing.T) {
	obs, err := NewObserver(threeGPUs(), []int{1, 2}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		if err := obs.Start(context.Background()); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		start := MonotonicNanos()
		time.Sleep(15 * time.Millisecond)
		first := MonotonicNanos()
		time.Sleep(15 * time.Millisecond)
		tel, err := obs.Stop(Phases{SubmitNs: start, FirstTokenNs: first, LastTokenNs: MonotonicNanos()})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if len(tel.Energy) != 2 || tel.Energy[0].GPU != 1 || tel.Energy[1].GPU != 2 {
			t.Fatalf("run %d: energy of %+v", run, tel.Energy)
		}
		if len(tel.Samples) != 2 || tel.Samples[0] < 3 || tel.IntervalMs != 1 {
			t.Fatalf("run %d: samples %v at %g ms", run, tel.Samples, tel.IntervalMs)
		}
	}
}

// A generation that failed before its first token has samples, no energy.
func TestObserverWithoutTokens(t *testing.T) {
	obs, _ := NewObserver(threeGPUs(), []int{0}, time.Millisecond)
	if err := obs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tel, err := obs.Stop(Phases{SubmitNs: MonotonicNanos()})
	if err != nil || tel.Energy != nil || len(tel.Samples) != 1 {
		t.Fatalf("%+v, %v", tel, err)
	}
}

func TestObserverAndGPUListErrors(t *testing.T) {
	if _, err := NewObserver(threeGPUs(), []int{3}, time.Millisecond); err == nil || !strings.Contains(err.Error(), "GPU 3 does not exist (NVML sees 3)") {
		t.Fatalf("missing GPU: %v", err)
	}
	if got, err := ParseGPUList("0, 2"); err != nil || len(got) != 2 || got[1] != 2 {
		t.Fatalf("ParseGPUList: %v %v", got, err)
	}
	for _, bad := range []string{"", "a", "0,-1", "1,,2"} {
		if _, err := ParseGPUList(bad); err == nil || !strings.Contains(err.Error(), "is not a GPU index") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
