// Package plots draws the digest's figures as SVG with gonum.org/v1/plot:
// time per token over the decode position, tok/s by engine, TTFT against
// prompt length and energy per token, one set per model and precision.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"regexp"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report"
)

// Figure is one drawn plot.
type Figure struct {
	// Name is a file name without extension: "tok-s_qwen2.5-14b_fp16".
	Name  string
	Title string
	SVG   []byte
	// Table is the index of the digest table the figure belongs to.
	Table int
}

// Figures holds what was drawn and, for each plot left out, why.
type Figures struct {
	Figures []Figure
	Skipped []string
}

// Size of every figure.
var width, height = 16 * vg.Centimeter, 10 * vg.Centimeter

// Draw makes the figures of a digest: per table, the time per token over
// the decode position of every run, tok/s by row, TTFT against prompt
// length, and energy per token by row where GPU telemetry was recorded.
func Draw(d report.Digest) (Figures, error) {
	var out Figures
	for ti, t := range d.Tables {
		what := t.Model + ", " + strings.ToUpper(t.Precision)
		rows := measured(t.Rows)
		if len(rows) == 0 {
			out.Skipped = append(out.Skipped, what+": no successful run to plot")
			continue
		}
		for _, draw := range []func(string, []report.Row) (*Figure, string, error){tokenLatency, tokPerS, ttftByPrompt, energy} {
			f, skipped, err := draw(what, rows)
			if err != nil {
				return out, fmt.Errorf("plot %s: %w", what, err)
			}
			if f != nil {
				f.Name += "_" + fileName(strings.TrimSuffix(t.Model, " (random weights)")) + "_" + fileName(t.Precision)
				f.Table = ti
				out.Figures = append(out.Figures, *f)
			}
			if skipped != "" {
				out.Skipped = append(out.Skipped, what+": "+skipped)
			}
		}
	}
	return out, nil
}

func measured(rows []report.Row) []report.Row {
	var out []report.Row
	for _, r := range rows {
		if r.Stats != nil {
			out = append(out, r)
		}
	}
	return out
}

// tokenLatency draws, for each run, the gap before each token against its
// decode position, from the repeat with the median runtime. Tokens that
// arrived together (a bundle) share their observation's gap.
func tokenLatency(what string, rows []report.Row) (*Figure, string, error) {
	p := newPlot("Time per token over decode position — "+what, "decode position (token)", "ms since the previous token")
	var lines []any
	for _, r := range rows {
		rec, ok := medianRepeat(r)
		if !ok || rec.Output == nil || len(rec.Output.OffsetsNs) < 2 {
			continue
		}
		off := rec.Output.OffsetsNs
		pts := make(plotter.XYs, 0, len(off)-1)
		last := off[0]
		for i := 1; i < len(off); i++ {
			if off[i] == last {
				continue // bundled with the previous token
			}
			pts = append(pts, plotter.XY{X: float64(i), Y: float64(off[i]-last) / 1e6})
			last = off[i]
		}
		lines = append(lines, legend(r), pts)
	}
	if len(lines) == 0 {
		return nil, "no per-token times in the records (imported results keep none)", nil
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, "", err
	}
	legendRoom(p, len(lines)/2)
	f, err := render(p, "token-latency", p.Title.Text)
	return f, "", err
}

// medianRepeat is the row's successful repeat with the median runtime.
func medianRepeat(r report.Row) (bench.Record, bool) {
	var ok []bench.Record
	for _, rec := range r.Records {
		if rec.Status == "ok" && rec.Metrics != nil {
			ok = append(ok, rec)
		}
	}
	if len(ok) == 0 {
		return bench.Record{}, false
	}
	slices.SortFunc(ok, func(a, b bench.Record) int { return cmpFloat(a.Metrics.RuntimeS, b.Metrics.RuntimeS) })
	return ok[(len(ok)-1)/2], true
}

// tokPerS draws the median tok/s of each row as a bar, with the interval
// of the median as an error bar.
func tokPerS(what string, rows []report.Row) (*Figure, string, error) {
	vals, lo, hi := make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		s := r.Stats.TokPerS
		vals[i], lo[i], hi[i] = s.Median, s.Median, s.Median
		if s.Interval != nil {
			lo[i], hi[i] = s.Interval.Lo, s.Interval.Hi
		}
		names[i] = legend(r)
	}
	f, err := bars("Tok/s by engine — "+what, "output tokens / runtime (tok/s); whiskers: interval of the median", "tok-s", names, vals, lo, hi)
	return f, "", err
}

// energy draws joules per output token of each row that has telemetry.
func energy(what string, rows []report.Row) (*Figure, string, error) {
	var names []string
	var vals, lo, hi []float64
	for _, r := range rows {
		e := r.Stats.EnergyPerToken
		if e == nil {
			continue
		}
		names = append(names, legend(r))
		vals, lo, hi = append(vals, e.Median), append(lo, e.Median), append(hi, e.Median)
		if e.Interval != nil {
			lo[len(lo)-1], hi[len(hi)-1] = e.Interval.Lo, e.Interval.Hi
		}
	}
	if len(names) == 0 {
		return nil, "no GPU telemetry in these records: no energy plot", nil
	}
	f, err := bars("Energy per token by engine — "+what, "joules per output token, all watched GPUs", "energy", names, vals, lo, hi)
	return f, "", err
}

// ttftByPrompt draws the median TTFT against the prompt length, one line
// per configuration (the row label without what sets runs apart).
func ttftByPrompt(what string, rows []report.Row) (*Figure, string, error) {
	byConfig := map[string]plotter.XYs{}
	var order []string
	for _, r := range rows {
		name := r.Records[0].Label
		if _, seen := byConfig[name]; !seen {
			order = append(order, name)
		}
		byConfig[name] = append(byConfig[name], plotter.XY{X: float64(r.PromptTokens), Y: r.Stats.TTFT.Median})
	}
	p := newPlot("TTFT against prompt length — "+what, "prompt tokens", "time to first token (s)")
	var lines []any
	for _, name := range order {
		pts := byConfig[name]
		slices.SortFunc(pts, func(a, b plotter.XY) int { return cmpFloat(a.X, b.X) })
		lines = append(lines, name, pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return nil, "", err
	}
	p.Y.Min = 0
	legendRoom(p, len(order))
	f, err := render(p, "ttft", p.Title.Text)
	return f, "", err
}

// bars draws horizontal bars, one per name, with whiskers from lo to hi.
func bars(title, xlabel, name string, names []string, vals, lo, hi []float64) (*Figure, error) {
	p := newPlot(title, xlabel, "")
	bc, err := plotter.NewBarChart(plotter.Values(vals), vg.Points(14))
	if err != nil {
		return nil, err
	}
	bc.Horizontal = true
	bc.Color = plotutil.Color(0)
	bc.LineStyle.Width = 0
	p.Add(bc)
	whiskers := make(errorPoints, len(vals))
	for i := range vals {
		whiskers[i] = errorPoint{x: vals[i], y: float64(i), low: vals[i] - lo[i], high: hi[i] - vals[i]}
	}
	eb, err := plotter.NewXErrorBars(whiskers)
	if err != nil {
		return nil, err
	}
	eb.LineStyle.Color = color.Black
	p.Add(eb)
	p.NominalY(names...)
	p.X.Min = 0
	// Room for the names on the left.
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n))
	}
	h := max(height, vg.Length(len(names))*vg.Points(24)+3*vg.Centimeter)
	return renderSized(p, name, title, width+vg.Length(min(longest, 60))*vg.Points(3), h)
}

// errorPoints feed XErrorBars: bar ends with their interval.
type errorPoint struct{ x, y, low, high float64 }
type errorPoints []errorPoint

func (e errorPoints) Len() int                        { return len(e) }
func (e errorPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errorPoints) XError(i int) (float64, float64) { return e[i].low, e[i].high }

// legendRoom raises the top of the y axis so that a legend of n entries,
// drawn in the top right corner, sits above the data rather than on it.
func legendRoom(p *plot.Plot, n int) {
	p.Y.Max *= 1.1 + 0.08*float64(n)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func render(p *plot.Plot, name, title string) (*Figure, error) {
	return renderSized(p, name, title, width, height)
}

func renderSized(p *plot.Plot, name, title string, w, h vg.Length) (*Figure, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return &Figure{Name: name, Title: title, SVG: b.Bytes()}, nil
}

// legend names a row in a plot: its label and workload.
func legend(r report.Row) string {
	return r.Label + " " + report.Kilo(r.PromptTokens) + "->" + report.Kilo(r.MaxNew)
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string {
	return strings.Trim(unsafeFile.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Inline returns the SVG element alone (no XML prolog), for an HTML page.
func (f Figure) Inline() []byte {
	if i := bytes.Index(f.SVG, []byte("<svg")); i >= 0 {
		return f.SVG[i:]
	}
	return f.SVG
}
