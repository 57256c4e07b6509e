package progress

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/bench"
)

// fakeClock is a test double of time.Now that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) wait(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) seconds(s float64)    { c.wait(time.Duration(s * float64(time.Second))) }

func linesDisplay() (*Display, *bytes.Buffer, *fakeClock) {
	var b bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	d := New(&b, Auto) // a buffer is not a terminal: plain lines
	d.now = clock.now
	return d, &b, clock
}

// A repeat in plain-line mode says when prefill ends and then reports at a
// steady pace with its rate and ETA, so that a log never goes silent.
func TestLinesFollowARepeat(t *testing.T) {
	d, out, clock := linesDisplay()
	if d.mode != Lines || d.Log() != out {
		t.Fatalf("mode %v", d.mode)
	}
	d.Begin("repeat 1/2", true, 10000, 800)
	clock.seconds(0.7)
	d.Tokens(1)
	for i := 2; i <= 800; i += 2 {
		clock.wait(40 * time.Millisecond) // 50 tok/s
		d.Tokens(i)
	}
	d.End(&bench.Metrics{TTFTS: 0.7, DecodeTokPerS: 50}, nil)
	got := out.String()
	for _, want := range []string{"repeat 1/2: prefill of 10000 prompt tokens\n", "repeat 1/2: first token after 0.70 s\n",
		"repeat 1/2: 500/800 tokens, 49.9 tok/s, ETA 6 s\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 3 {
		t.Errorf("%d lines in 16.7 s; want one every 10 s at most:\n%s", n, got)
	}
	// The next repeat has an ETA before its first token, from this one.
	d.Begin("repeat 2/2", true, 10000, 800)
	clock.seconds(0.2)
	if eta := d.etaText(); eta != "ETA 16 s" { // 0.5 s of prefill left + 800/50
		t.Errorf("ETA during prefill: %q", eta)
	}
	if phase := d.phaseText(); phase != "repeat 2/2  prefill 0.2 s" {
		t.Errorf("phase %q", phase)
	}
}

// Across a sweep each cell says what it is, how long it took and how long
// the rest should take, from the cells measured so far.
func TestLinesFollowASweep(t *testing.T) {
	d, out, clock := linesDisplay()
	d.StartSweep(3, 3000)
	d.CellStart(0, "ref fp16 10k->0.8k", 1000)
	clock.seconds(10)
	d.CellDone(nil)
	d.CellStart(1, "ref int8 10k->0.8k", 1000)
	clock.seconds(1)
	d.CellDone(errors.New("load: out of memory"))
	got := out.String()
	for _, want := range []string{"sweep: 3 cells to run\n", "cell 1/3: ref fp16 10k->0.8k\n", "cell 1/3 done in 10 s; 2 left, ETA 20 s\n",
		"cell 2/3 failed after 1 s: load: out of memory; 1 failed, 1 left, ETA 10 s\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
}

func TestQuietShowsNothing(t *testing.T) {
	var b bytes.Buffer
	d := New(&b, Quiet)
	d.StartSweep(1, 10)
	d.CellStart(0, "x", 10)
	d.Begin("repeat 1/1", true, 10, 10)
	d.Tokens(5)
	d.End(nil, errors.New("x"))
	d.CellDone(nil)
	d.Close()
	if b.Len() != 0 || d.Log() != nil {
		t.Fatalf("quiet wrote %q", b.String())
	}
}

// Bars draw from mpb's own goroutine while tokens arrive from the engine's:
// this must neither race nor deadlock, and log lines still come out.
func TestBarsUnderConcurrentTokens(t *testing.T) {
	var b syncBuffer
	d := New(&b, Bars)
	d.StartSweep(2, 200)
	for cell := range 2 {
		d.CellStart(cell, fmt.Sprint("cell ", cell), 100)
		d.Begin("repeat 1/1", true, 10, 100)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 100; i++ {
				d.Tokens(i)
				time.Sleep(time.Millisecond)
			}
		}()
		wg.Wait()
		d.End(&bench.Metrics{TTFTS: 0.01, DecodeTokPerS: 1000}, nil)
		fmt.Fprintf(d.Log(), "repeat 1/1: 100 tokens\n")
		d.CellDone(nil)
	}
	d.Close()
	if !strings.Contains(b.String(), "repeat 1/1: 100 tokens") || !strings.Contains(b.String(), "cells") {
		t.Fatalf("bars wrote:\n%q", b.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDuration(t *testing.T) {
	for s, want := range map[float64]string{3.4: "3 s", 405: "6m45s", 3725: "1h02m", -1: "—"} {
		if got := Duration(s); got != want {
			t.Errorf("Duration(%v) = %q, want %q", s, got, want)
		}
	}
}
