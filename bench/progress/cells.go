package progress

import (
	"fmt"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// cells is the state of a sweep: how many cells, how much work each is,
// and how long the measured ones took.
type cells struct {
	total, done, failed int
	workLeft            float64
	current             struct {
		index int
		name  string
		work  float64
		start time.Time
	}
	// secondsPerWork comes from cells that finished without failing.
	measuredSeconds, measuredWork float64
}

// StartSweep begins following total cells whose work (generated tokens,
// say) sums to work.
func (d *Display) StartSweep(total int, work float64) {
	d.mu.Lock()
	d.cells = cells{total: total, workLeft: work}
	d.mu.Unlock()
	switch d.mode {
	case Bars:
		bar := d.bars.AddBar(int64(total), mpb.BarPriority(0),
			mpb.PrependDecorators(decor.Name("cells ", decor.WCSyncWidthR), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return "  " + d.sweepText() })))
		d.mu.Lock()
		d.cellsB = bar
		d.mu.Unlock()
	case Lines:
		fmt.Fprintf(d.out, "sweep: %d cells to run\n", total)
	}
}

// CellStart begins cell i (0-based) of the sweep.
func (d *Display) CellStart(i int, name string, work float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &d.cells.current
	c.index, c.name, c.work, c.start = i, name, work, d.now()
	if d.mode == Lines {
		fmt.Fprintf(d.out, "cell %d/%d: %s\n", i+1, d.cells.total, name)
	}
}

// CellDone ends the current cell; err is its failure, if any.
func (d *Display) CellDone(err error) {
	d.mu.Lock()
	s := &d.cells
	c := s.current
	took := d.now().Sub(c.start).Seconds()
	s.done++
	s.workLeft -= c.work
	if err != nil {
		s.failed++
	} else {
		s.measuredSeconds += took
		s.measuredWork += c.work
	}
	if d.mode == Lines {
		what := fmt.Sprintf("done in %s", Duration(took))
		if err != nil {
			what = fmt.Sprintf("failed after %s: %v", Duration(took), err)
		}
		fmt.Fprintf(d.out, "cell %d/%d %s; %s\n", c.index+1, s.total, what, d.sweepTextLocked())
	}
	bar := d.cellsB
	d.mu.Unlock()
	if bar != nil {
		bar.Increment()
	}
}

func (d *Display) sweepText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sweepTextLocked()
}

// sweepTextLocked is "2 failed, 9 left, ETA 6m45s": the ETA assumes the
// time per unit of work measured so far holds for the cells left.
func (d *Display) sweepTextLocked() string {
	s := d.cells
	left := s.total - s.done
	text := fmt.Sprintf("%d left", left)
	if s.failed > 0 {
		text = fmt.Sprintf("%d failed, %s", s.failed, text)
	}
	if left == 0 {
		return text
	}
	if s.measuredWork > 0 {
		return text + ", ETA " + Duration(s.measuredSeconds/s.measuredWork*s.workLeft)
	}
	return text + ", ETA after the first cell"
}
