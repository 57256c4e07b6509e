package bench

import (
	"context"
	"errors"
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

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{3, 1, 2, 4})
	if s.Median != 2.5 || s.Min != 1 || s.Max != 4 || s.Mean != 2.5 || s.N != 4 {
		t.Fatalf("%+v", s)
	}
	// sd = 1.2910, t(3) = 3.182: half-width 3.182·1.2910/2 = 2.054
	if math.Abs(s.CI95[1]-2.5-2.0540) > 1e-3 {
		t.Fatalf("ci %v", s.CI95)
	}
	if one := Summarize([]float64{7}); one.CI95 != [2]float64{7, 7} {
		t.Fatalf("%+v", one)
	}
}

func TestKiloMatchesDigest(t *testing.T) {
	for n, want := range map[int]string{10000: "10k", 800: "0.8k", 20000: "20k", 1000: "1k", 2048: "2.048k"} {
		if got := Kilo(n); got != want {
			t.Errorf("Kilo(%d) = %s, want %s", n, got, want)
		}
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
	row := DigestRow(recs)
	if !strings.HasPrefix(row, "| fake | 0.016k->0.01k | 0.11 (net) / 0.11 (with load) |") || !strings.Contains(row, "| 10 |") {
		t.Fatalf("row %q", row)
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

func TestWriteGoBench(t *testing.T) {
	recs := []Record{{Status: "ok", Label: "ref (ref-cpu, random:tiny)", Prompt: Prompt{Tokens: 64}, Workload: Workload{MaxNew: 8},
		Metrics: &Metrics{RuntimeS: 0.5, TokPerS: 16, DecodeTokPerS: 20, TTFTS: 0.1, ITLms: ITL{P99: 2}, OutputTokens: 8}},
		{Status: "error", Label: "x"}}
	var sb strings.Builder
	if err := WriteGoBench(&sb, recs); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	want := "BenchmarkGenerate/label=ref_ref-cpu_random:tiny/prompt=64/gen=8 1 500000000 ns/op 16 tok/s 20 decode-tok/s 100000000 ttft-ns 2000000 itl-p99-ns 8 tokens\n"
	if !strings.Contains(out, want) || !strings.Contains(out, "Unit tok/s better=higher") || strings.Contains(out, "label=x") {
		t.Fatalf("output:\n%s", out)
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
