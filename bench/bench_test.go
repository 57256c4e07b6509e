package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

func TestMeasure(t *testing.T) {
	// Submit at 1 s; tokens at 1.5 s, then bundles of 2 every 10 ms.
	res := driver.Result{SubmitNs: 1e9, DevicePrefillNs: -1, DeviceDecodeNs: 400e6}
	toks := []driver.Token{{TimeNs: 1.5e9}}
	for i := 1; i <= 4; i++ {
		ts := int64(1.5e9 + float64(i)*10e6)
		toks = append(toks, driver.Token{TimeNs: ts, Bundle: 2}, driver.Token{TimeNs: ts, Bundle: 2})
	}
	m := Measure(250e6, res, toks)
	approx := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	approx("ttft", m.TTFTS, 0.5)
	approx("decode", m.DecodeS, 0.04)
	approx("runtime", m.RuntimeS, 0.54)
	approx("with load", m.RuntimeWithLoadS, 0.79)
	approx("tok/s", m.TokPerS, 9/0.54)
	approx("decode tok/s", m.DecodeTokPerS, 8/0.04)
	approx("itl p50", m.ITLms.P50, 10)
	approx("itl max", m.ITLms.Max, 10)
	if m.Observations != 5 || math.Abs(m.TokensPerObs-9.0/5) > 1e-12 {
		t.Errorf("observations %d, tokens per observation %v", m.Observations, m.TokensPerObs)
	}
	if m.DevicePrefillS != nil || m.DeviceDecodeS == nil || *m.DeviceDecodeS != 0.4 {
		t.Errorf("device times %v %v", m.DevicePrefillS, m.DeviceDecodeS)
	}
	if z := Measure(0, res, nil); z.OutputTokens != 0 || z.RuntimeS != 0 {
		t.Errorf("no tokens: %+v", z)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 90: 9, 99: 10, 10: 1} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
}

// The statistics must hold for the repeat counts people use: one repeat
// has no interval (not a zero-width one), 2 to 5 give their range with its
// exact confidence, 6 and more a 95% interval of the median; no interval
// ever leaves the data, so a positive quantity never gets a negative bound.
func TestSummarizeSmallAndLargeSamples(t *testing.T) {
	one := Summarize([]float64{7})
	if one.N != 1 || one.Median != 7 || one.Interval != nil || one.IntervalText("%.2f") != "no interval from 1 repeat" {
		t.Fatalf("n=1: %+v", one)
	}
	// Two repeats far apart: a mean ± t·sd interval would go below zero here.
	two := Summarize([]float64{0.5, 9.5})
	if two.Median != 5 || two.Interval == nil || two.Interval.Lo != 0.5 || two.Interval.Hi != 9.5 || math.Abs(two.Interval.Confidence-0.5) > 1e-9 {
		t.Fatalf("n=2: %+v %+v", two, two.Interval)
	}
	three := Summarize([]float64{3, 1, 2})
	if three.Median != 2 || three.Interval.Lo != 1 || three.Interval.Hi != 3 || math.Abs(three.Interval.Confidence-0.75) > 1e-9 {
		t.Fatalf("n=3: %+v %+v", three, three.Interval)
	}
	if got := three.IntervalText("%.1f"); got != "[1.0, 3.0] at 75%" {
		t.Fatalf("n=3 text %q", got)
	}
	five := Summarize([]float64{5, 1, 4, 2, 3})
	if math.Abs(five.Interval.Confidence-0.9375) > 1e-9 || five.Interval.Lo != 1 || five.Interval.Hi != 5 {
		t.Fatalf("n=5: %+v", five.Interval)
	}
	// 30 repeats 1..30: the 95% interval of the median is between order
	// statistics 10 and 21 (binomial(30, ½)), inside the data and narrower
	// than its range.
	xs := make([]float64, 30)
	for i := range xs {
		xs[i] = float64(30 - i)
	}
	thirty := Summarize(xs)
	iv := thirty.Interval
	if thirty.Median != 15.5 || iv == nil || iv.Confidence < 0.95 || iv.Lo != 10 || iv.Hi != 21 {
		t.Fatalf("n=30: %+v %+v", thirty, iv)
	}
	for _, s := range []Summary{two, three, five, thirty} {
		if s.Interval.Lo < s.Min || s.Interval.Hi > s.Max || s.Interval.Lo > s.Median || s.Interval.Hi < s.Median {
			t.Fatalf("interval %+v outside the data %+v", s.Interval, s)
		}
	}
	if (Summary{}).IntervalText("%f") != "no samples" || Summarize(nil).N != 0 {
		t.Fatal("empty summary")
	}
}

func TestRandomPrompt(t *testing.T) {
	a, _ := RandomPrompt(1000, 152064, 1)
	b, _ := RandomPrompt(1000, 152064, 1)
	c, _ := RandomPrompt(1000, 152064, 2)
	if a.Hash != b.Hash || a.Hash == c.Hash || len(a.IDs) != 1000 {
		t.Fatal("prompts are not deterministic per seed")
	}
	for _, id := range a.IDs {
		if id < 0 || id >= firstSpecialID {
			t.Fatalf("id %d outside [0, %d)", id, firstSpecialID)
		}
	}
	if _, err := RandomPrompt(0, 100, 1); err == nil {
		t.Fatal("zero tokens accepted")
	}
}

// fakeEngine is a test double of driver.Engine: 10 tokens 1 ms apart, or a
// failure on a chosen call.
type fakeEngine struct {
	calls  int
	failAt int
}

func (f *fakeEngine) Info() driver.Info { return driver.Info{Engine: "fake", LoadNs: 5e6} }
func (f *fakeEngine) Close() error      { return nil }
func (f *fakeEngine) Generate(_ context.Context, req driver.Request, on func([]driver.Token)) (driver.Result, error) {
	f.calls++
	if f.calls == f.failAt {
		return driver.Result{}, &driver.EngineFailure{Engine: "fake", Phase: driver.PhaseDecode, Kind: "crashed", Detail: "boom"}
	}
	var toks []driver.Token
	for i := range req.MaxNewTokens {
		toks = append(toks, driver.Token{ID: int32(i), Index: i, TimeNs: int64(100e6 + i*1e6), Bundle: 1})
	}
	on(toks)
	return driver.Result{Finish: driver.FinishLength, OutputTokens: len(toks), SubmitNs: 0, DevicePrefillNs: -1, DeviceDecodeNs: -1}, nil
}

func TestRunWritesEveryRepeatDurably(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "r.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	prompt, _ := RandomPrompt(16, 1000, 1)
	plan := Plan{Label: "fake", Prompt: prompt, Workload: Workload{MaxNew: 10, Warmup: 1, Repeats: 3}}
	recs, err := Run(context.Background(), &fakeEngine{}, plan, w.Write, nil)
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	back, err := ReadRecords(path)
	if err != nil || len(back) != 3 {
		t.Fatalf("read back %d, %v", len(back), err)
	}
	r := back[2]
	if r.Schema != Schema || r.Status != "ok" || r.Repeat != 2 || r.Metrics.OutputTokens != 10 || len(r.Output.IDs) != 10 ||
		r.Prompt.Hash != prompt.Hash || math.Abs(r.Metrics.TTFTS-0.1) > 1e-12 {
		t.Fatalf("record %+v", r)
	}
	if recs[0].RunID != recs[2].RunID || recs[0].RunID == "" {
		t.Fatalf("the repeats of one run share one run id: %q %q", recs[0].RunID, recs[2].RunID)
	}
}

func TestRunRecordsTheFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	w, _ := OpenWriter(path)
	defer w.Close()
	prompt, _ := RandomPrompt(4, 1000, 1)
	plan := Plan{Label: "fake", Prompt: prompt, Workload: Workload{MaxNew: 5, Warmup: 0, Repeats: 3}}
	recs, err := Run(context.Background(), &fakeEngine{failAt: 2}, plan, w.Write, nil)
	var f *driver.EngineFailure
	if !errors.As(err, &f) || len(recs) != 1 {
		t.Fatalf("err %v, %d records", err, len(recs))
	}
	back, _ := ReadRecords(path)
	if len(back) != 2 || back[0].Status != "ok" || back[1].Status != "error" || !strings.Contains(back[1].Error, "crashed during decode") {
		t.Fatalf("file holds %+v", back)
	}
}

func TestOpenWriterError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	if _, err := OpenWriter(filepath.Join(blocker, "r.jsonl")); err == nil {
		t.Fatal("writing under a file succeeded")
	}
}

// A writer that never got a record leaves no file behind; a bad path is
// refused when the writer is opened, before any engine runs.
func TestWriterCreatesTheFileWithTheFirstRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "r.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("an unused writer created %s: %v", filepath.Dir(path), err)
	}
	w, _ = OpenWriter(path)
	if err := w.Write(Record{Schema: Schema}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if recs, err := ReadRecords(path); err != nil || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	ro := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(ro, 0o555)
	if os.Getuid() != 0 {
		if _, err := OpenWriter(filepath.Join(ro, "x", "r.jsonl")); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only folder: %v", err)
		}
	}
}

// A damaged line (a crash cut it short, a hand edit broke it, it is not a
// record) is skipped and named by its line number; every intact record is
// still read.
func TestReadRecordsSkipsDamagedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	good := func(id string) string {
		return `{"schema":"lmdrive.result/v1","run_id":"` + id + `","status":"ok","label":"x"}`
	}
	body := good("a") + "\n" + `{"schema":"lmdrive.result/v1","run_id":"b","sta` + "\n\n" + good("c") + "\n" +
		`{"hello":"world"}` + "\n" + good("d") // last line without its newline is still whole
	os.WriteFile(path, []byte(body), 0o644)
	recs, err := ReadRecords(path)
	var d *DamagedLines
	if !errors.As(err, &d) || len(recs) != 3 || recs[0].RunID != "a" || recs[1].RunID != "c" || recs[2].RunID != "d" {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if len(d.Lines) != 2 || d.Lines[0].Line != 2 || d.Lines[1].Line != 5 {
		t.Fatalf("damaged lines %+v", d.Lines)
	}
	var warnings []string
	recs, err = ReadRecordsTolerant(path, func(s string) { warnings = append(warnings, s) })
	if err != nil || len(recs) != 3 || len(warnings) != 2 || !strings.Contains(warnings[0], "r.jsonl line 2 skipped") ||
		!strings.Contains(warnings[1], "line 5 skipped: not an lmdrive result record") {
		t.Fatalf("tolerant: %v %q", err, warnings)
	}
	if _, err := ReadRecords(filepath.Join(t.TempDir(), "none.jsonl")); err == nil || errors.As(err, &d) {
		t.Fatalf("a missing file: %v", err)
	}
}

// recordingProgress is a test double of Progress that notes every call.
type recordingProgress struct{ calls []string }

func (r *recordingProgress) Begin(what string, measured bool, prompt, maxNew int) {
	r.calls = append(r.calls, fmt.Sprintf("begin %s %v %d %d", what, measured, prompt, maxNew))
}
func (r *recordingProgress) Tokens(n int) { r.calls = append(r.calls, fmt.Sprintf("tokens %d", n)) }
func (r *recordingProgress) End(m *Metrics, err error) {
	if m != nil {
		r.calls = append(r.calls, fmt.Sprintf("end %d", m.OutputTokens))
	} else {
		r.calls = append(r.calls, "end failed")
	}
}

// The progress hook hears every repeat, warmups included, with the tokens
// as the engine hands them over, and the failure that ends a run.
func TestRunReportsProgress(t *testing.T) {
	prompt, _ := RandomPrompt(16, 1000, 1)
	p := &recordingProgress{}
	plan := Plan{Label: "fake", Prompt: prompt, Workload: Workload{MaxNew: 4, Warmup: 1, Repeats: 2}, Progress: p}
	if _, err := Run(context.Background(), &fakeEngine{failAt: 3}, plan, func(Record) error { return nil }, nil); err == nil {
		t.Fatal("the third generation should fail")
	}
	want := "begin warmup 1/1 false 16 4|tokens 4|end 4|begin repeat 1/2 true 16 4|tokens 4|end 4|begin repeat 2/2 true 16 4|end failed"
	if got := strings.Join(p.calls, "|"); got != want {
		t.Fatalf("progress calls\n%s\nwant\n%s", got, want)
	}
}
