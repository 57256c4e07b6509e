// Package progress shows a benchmark's progress to a person while it runs:
// on a terminal a bar per repeat that follows the tokens (prefill, then
// decode tok/s, with an ETA) and, in a sweep, a bar of cells done with an
// ETA from the cells measured so far; elsewhere (a log file, a CI job)
// plain lines at a steady pace; or nothing at all. The bars are drawn by
// github.com/vbauerster/mpb, which keeps log lines above them.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/lmdrive/lmdrive/bench"
)

// Mode says how progress shows.
type Mode int

const (
	// Auto draws bars on a terminal and plain lines anywhere else.
	Auto Mode = iota
	// Bars always draws bars.
	Bars
	// Lines writes plain lines.
	Lines
	// Quiet shows nothing.
	Quiet
)

// lineEvery is how often plain-line mode reports a repeat in progress.
const lineEvery = 10 * time.Second

// Display follows repeats (it is a bench.Progress) and the cells of a
// sweep. Its methods may be called from the engine's token callback.
type Display struct {
	mode  Mode
	out   io.Writer
	bars  *mpb.Progress
	now   func() time.Time
	every time.Duration

	mu     sync.Mutex
	rep    repeat
	bar    *mpb.Bar
	cells  cells
	cellsB *mpb.Bar
}

var _ bench.Progress = (*Display)(nil)

// New shows progress on w.
func New(w io.Writer, mode Mode) *Display {
	if mode == Auto {
		mode = Lines
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = Bars
		}
	}
	d := &Display{mode: mode, out: w, now: time.Now, every: lineEvery}
	if mode == Bars {
		d.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(36), mpb.WithRefreshRate(200*time.Millisecond),
			mpb.WithAutoRefresh()) // also when w is not a terminal (asked for Bars)
	}
	return d
}

// Log is where lines for a person go while progress shows: above the bars
// on a terminal, nowhere when quiet.
func (d *Display) Log() io.Writer {
	switch d.mode {
	case Quiet:
		return nil
	case Bars:
		return d.bars
	}
	return d.out
}

// Close stops drawing; call it before printing the final report.
func (d *Display) Close() {
	if d.bars == nil {
		return
	}
	// mpb's drawing calls back into the decorators, which take d.mu: never
	// call mpb while holding it.
	d.mu.Lock()
	bar, cellsBar := d.bar, d.cellsB
	d.bar, d.cellsB = nil, nil
	d.mu.Unlock()
	if bar != nil {
		bar.Abort(true)
	}
	if cellsBar != nil {
		cellsBar.Abort(false)
	}
	d.bars.Shutdown()
}

// repeat is the state of the repeat in progress.
type repeat struct {
	what          string
	maxNew        int
	start, first  time.Time
	tokens        int
	lastLine      time.Time
	lastTTFT      float64 // of the previous repeat, for the ETA during prefill
	lastDecodeTPS float64
}

// Begin starts following a repeat.
func (d *Display) Begin(what string, measured bool, promptTokens, maxNew int) {
	d.mu.Lock()
	now := d.now()
	d.rep = repeat{what: what, maxNew: maxNew, start: now, lastLine: now, lastTTFT: d.rep.lastTTFT, lastDecodeTPS: d.rep.lastDecodeTPS}
	if d.mode == Lines {
		fmt.Fprintf(d.out, "%s: prefill of %d prompt tokens\n", what, promptTokens)
	}
	d.mu.Unlock()
	if d.mode == Bars {
		bar := d.bars.AddBar(int64(maxNew), mpb.BarRemoveOnComplete(), mpb.BarPriority(1),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return d.phaseText() }, decor.WCSyncWidthR)),
			mpb.AppendDecorators(decor.CountersNoUnit("%d/%d tokens"), decor.Any(func(decor.Statistics) string { return "  " + d.etaText() })))
		d.mu.Lock()
		d.bar = bar
		d.mu.Unlock()
	}
}

// Tokens hears how many tokens the repeat has received so far.
func (d *Display) Tokens(received int) {
	d.mu.Lock()
	now := d.now()
	r := &d.rep
	bar := d.bar
	if r.tokens == 0 && received > 0 {
		r.first = now
		if d.mode == Lines {
			fmt.Fprintf(d.out, "%s: first token after %.2f s\n", r.what, now.Sub(r.start).Seconds())
			r.lastLine = now
		}
	}
	r.tokens = received
	if d.mode == Lines && now.Sub(r.lastLine) >= d.every && received < r.maxNew {
		fmt.Fprintf(d.out, "%s: %d/%d tokens, %s, %s\n", r.what, received, r.maxNew, d.rateText(now), d.etaTextAt(now))
		r.lastLine = now
	}
	d.mu.Unlock()
	if bar != nil {
		bar.SetCurrent(int64(received))
	}
}

// End closes the repeat: m is its metrics, or nil when it failed.
func (d *Display) End(m *bench.Metrics, err error) {
	d.mu.Lock()
	if m != nil {
		d.rep.lastTTFT, d.rep.lastDecodeTPS = m.TTFTS, m.DecodeTokPerS
	}
	bar := d.bar
	d.bar = nil
	d.mu.Unlock()
	switch {
	case bar == nil:
	case err != nil:
		bar.Abort(true)
	default:
		bar.SetTotal(-1, true)
	}
}

// phaseText is "repeat 1/3  prefill 2.1 s" or "repeat 1/3  decode 45.2 tok/s".
func (d *Display) phaseText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	r := d.rep
	if r.tokens == 0 {
		return fmt.Sprintf("%s  prefill %.1f s", r.what, now.Sub(r.start).Seconds())
	}
	return fmt.Sprintf("%s  decode %s", r.what, d.rateText(now))
}

func (d *Display) rateText(now time.Time) string {
	r := d.rep
	if el := now.Sub(r.first).Seconds(); r.tokens > 1 && el > 0 {
		return fmt.Sprintf("%.1f tok/s", float64(r.tokens-1)/el)
	}
	return "— tok/s"
}

func (d *Display) etaText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.etaTextAt(d.now())
}

// etaTextAt estimates the rest of the repeat: from the decode rate once
// tokens flow, from the previous repeat's prefill and decode before that.
func (d *Display) etaTextAt(now time.Time) string {
	r := d.rep
	left := r.maxNew - r.tokens
	switch {
	case r.tokens > 1:
		rate := float64(r.tokens-1) / now.Sub(r.first).Seconds()
		return "ETA " + Duration(float64(left)/rate)
	case r.lastDecodeTPS > 0:
		prefill := max(r.lastTTFT-now.Sub(r.start).Seconds(), 0)
		return "ETA " + Duration(prefill+float64(left)/r.lastDecodeTPS)
	}
	return "ETA —"
}

// Duration writes seconds for a person: "45 s", "6m45s", "1h02m".
func Duration(s float64) string {
	switch {
	case s < 0:
		return "—"
	case s < 60:
		return fmt.Sprintf("%.0f s", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%dh%02dm", int(s)/3600, int(s)%3600/60)
}
