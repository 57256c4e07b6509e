package htmlpage

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/bench/report/plots"
	"github.com/lmdrive/lmdrive/bench/report/reporttest"
	"github.com/lmdrive/lmdrive/cuda"
)

// samplePage writes the page of the fixture digest (with GPU telemetry on
// the 14B run, so that every kind of plot is drawn) and returns its path.
func samplePage(t *testing.T) (string, report.Digest, plots.Figures) {
	t.Helper()
	recs := reporttest.SeedLike()
	for i := range recs {
		if recs[i].RunID == "r1" {
			recs[i].Telemetry = &cuda.RunTelemetry{Energy: []cuda.GPUEnergy{{Total: cuda.PhaseEnergy{EnergyJ: cuda.Known(5000.0 + float64(i))}}}}
		}
	}
	d := report.Build(recs, report.Options{})
	figs, err := plots.Draw(d)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, d, figs, Meta{Title: "test digest", Generated: "lmdrive test", Sources: []string{"a.jsonl"}, Notes: figs.Skipped}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "digest.html")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, d, figs
}

func TestPageIsSelfContained(t *testing.T) {
	path, d, figs := samplePage(t)
	b, _ := os.ReadFile(path)
	page := string(b)
	if n := strings.Count(page, "<table class=\"digest\">"); n != len(d.Tables) {
		t.Fatalf("%d tables for %d in the digest", n, len(d.Tables))
	}
	if n := strings.Count(page, "<svg"); n != len(figs.Figures) || n < 9 {
		t.Fatalf("%d inline SVGs for %d figures", n, len(figs.Figures))
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "<?xml", "&lt;svg"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(page, "STOP_SET_NOT_CLEARED") || !strings.Contains(page, `<tr class="error">`) {
		t.Error("notes or the failed row missing")
	}
}

// browserPath finds a Chromium to drive, or skips the test in one line
// where none is installed and LMDRIVE_REQUIRE_BROWSER is unset (CI sets it).
func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LMDRIVE_REQUIRE_BROWSER") != "" {
		t.Fatal("LMDRIVE_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
	}
	t.Skip("no chromium here: the HTML page is not checked in a browser (apt-get install chromium, or set LMDRIVE_REQUIRE_BROWSER=1 to insist)")
	return ""
}

// TestPageRendersInABrowser opens the page in headless Chromium and checks
// what a person would see: every table laid out with its rows, every plot
// drawn with marks of real size, and a screenshot that is not blank.
func TestPageRendersInABrowser(t *testing.T) {
	chrome := browserPath(t)
	path, d, figs := samplePage(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	type tableBox struct {
		Rows, Cols    int
		Width, Height float64
	}
	type svgBox struct {
		Width, Height float64
		Marks         int // paths and lines drawn with a non-empty box
		Text          string
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	tables, err := chromedp.Run(ctx, chromedp.Evaluate[[]tableBox](`[...document.querySelectorAll("table.digest")].map(t => {
		const r = t.getBoundingClientRect();
		return {Rows: t.tBodies[0].rows.length, Cols: t.tHead.rows[0].cells.length, Width: r.width, Height: r.height};
	})`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	svgs, err := chromedp.Run(ctx, chromedp.Evaluate[[]svgBox](`[...document.querySelectorAll("figure.plot svg")].map(s => {
		const r = s.getBoundingClientRect();
		const marks = [...s.querySelectorAll("path, line, rect, polyline")].filter(e => {
			const b = e.getBBox(); return b.width > 0 || b.height > 0;
		}).length;
		return {Width: r.width, Height: r.height, Marks: marks, Text: s.textContent};
	})`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if len(tables) != len(d.Tables) {
		t.Fatalf("the browser laid out %d tables, the digest has %d", len(tables), len(d.Tables))
	}
	for i, tb := range tables {
		if tb.Rows != len(d.Tables[i].Rows) || tb.Cols != 7 || tb.Width < 600 || tb.Height < 40 {
			t.Errorf("table %d (%s) rendered as %+v", i, d.Tables[i].Model, tb)
		}
	}
	if len(svgs) != len(figs.Figures) {
		t.Fatalf("the browser drew %d plots, the page has %d", len(svgs), len(figs.Figures))
	}
	for i, s := range svgs {
		if s.Width < 300 || s.Height < 150 || s.Marks < 10 || !strings.Contains(s.Text, "—") {
			t.Errorf("plot %d (%s) rendered as %+v", i, figs.Figures[i].Name, s)
		}
	}
	if blank(t, shot) {
		t.Error("the screenshot is blank")
	}
	if p := os.Getenv("LMDRIVE_BROWSER_SCREENSHOT"); p != "" {
		os.WriteFile(p, shot, 0o644)
	}
}

// blank reports whether a PNG screenshot is one colour.
func blank(t *testing.T, b []byte) bool {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bounds := img.Bounds()
	first := img.At(bounds.Min.X, bounds.Min.Y)
	r0, g0, b0, _ := first.RGBA()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bb != b0 {
				return false
			}
		}
	}
	return true
}
