package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/bench/report/reporttest"
	"github.com/lmdrive/lmdrive/cuda"
)

func TestBuildGroupsLikeTheSeed(t *testing.T) {
	d := Build(reporttest.SeedLike(), Options{})
	var heads []string
	for _, tb := range d.Tables {
		heads = append(heads, tb.Precision+" "+tb.Model+fmt.Sprintf(" %d", len(tb.Rows)))
	}
	want := []string{"fp16 qwen2.5-14b (random weights) 1", "fp16 qwen2.5-32b (random weights) 3", "int8 qwen2.5-14b (random weights) 2"}
	if strings.Join(heads, "|") != strings.Join(want, "|") {
		t.Fatalf("tables %q, want %q", heads, want)
	}
	// Two runs with identical labels and workloads say what differs: the prompt.
	rows := d.Tables[1].Rows
	if !strings.Contains(rows[0].Label, "[prompt: random token IDs, seed 1]") || !strings.Contains(rows[1].Label, "[prompt: text (mixed), seed 1, ChatML]") {
		t.Fatalf("labels %q / %q", rows[0].Label, rows[1].Label)
	}
	r2 := rows[0]
	if r2.Stats.Runtime.N != 3 || r2.Stats.Runtime.Median != 21 || r2.Stats.Runtime.Interval.Lo != 20 || r2.Stats.Runtime.Interval.Hi != 26 {
		t.Fatalf("r2 stats %+v", r2.Stats.Runtime)
	}
	notes := strings.Join(r2.Notes, "; ")
	for _, w := range []string{"median of 3; runtime range 20–26 s (75% confidence)", "repeats disagree: runtime varies 29%",
		"no warmup: repeat 1 was cold (20 s against a median of 23.5 s for the others)", `load 4.00 s: "with load" adds it`} {
		if !strings.Contains(notes, w) {
			t.Errorf("r2 notes lack %q:\n%s", w, notes)
		}
	}
	early := strings.Join(rows[2].Notes, "; ")
	if !strings.Contains(early, "stopped early at 513 of 1000: STOP_SET_NOT_CLEARED") || !strings.Contains(early, "1 repeat: no interval") ||
		!strings.Contains(early, "incomplete: 1 of 2 repeats recorded") {
		t.Fatalf("early-stop notes: %s", early)
	}
	int8 := d.Tables[2].Rows
	if int8[0].Status != "error" || int8[0].Stats != nil || !strings.Contains(int8[0].Notes[0], "failed: engine ref: load: out of memory") ||
		strings.Contains(int8[0].Notes[0], "more detail") {
		t.Fatalf("failed row %+v", int8[0])
	}
	if int8[1].Status != "ok" || int8[1].Precision != "int8" {
		t.Fatalf("int8 row %+v", int8[1])
	}
}

func TestEnvironment(t *testing.T) {
	recs := reporttest.SeedLike()
	recs[0].Repro = &bench.Repro{GPU: &cuda.Inventory{System: cuda.System{DriverVersion: cuda.Known("580.159.04"), CUDADriverVersion: cuda.Known("13.0")},
		Devices: []cuda.Device{{Name: "NVIDIA H200"}, {Name: "NVIDIA H200"}}}}
	recs[len(recs)-1].Time = reporttest.Day.Add(48 * time.Hour)
	env := Build(recs, Options{}).Environment
	if len(env) != 1 || env[0] != "h200-a: 10 records, 2026-12-05 to 2026-12-07; 2 × NVIDIA H200, driver 580.159.04, CUDA 13.0; lmdrive dev abc123" {
		t.Fatalf("environment %q", env)
	}
	var md bytes.Buffer
	WriteMarkdown(&md, Build(recs, Options{}), "t")
	if !strings.Contains(md.String(), "\nThe records come from:\n\n- h200-a: 10 records") {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

func TestMergeAndRunNumbers(t *testing.T) {
	f := reporttest.Fixture{Label: "ref (cpu)", Model: "random:tiny", Dtype: "fp32", Prompt: 64, MaxNew: 8, TTFT: 0.01, Load: 0.1, Warmup: 1}
	f.Run = "run-a"
	recs := reporttest.Repeats(f, 0.5, 0.6)
	f.Run = "run-b"
	recs = append(recs, reporttest.Repeats(f, 0.55, 0.65)...)
	rows := Build(recs, Options{}).Rows()
	// Nothing recorded tells the two runs apart but their ids.
	if len(rows) != 2 || !strings.HasSuffix(rows[0].Label, "[run run-a]") || !strings.HasSuffix(rows[1].Label, "[run run-b]") {
		t.Fatalf("rows %q %q", rows[0].Label, rows[len(rows)-1].Label)
	}
	merged := Build(recs, Options{Merge: true}).Rows()
	if len(merged) != 1 || merged[0].Stats.Runtime.N != 4 || merged[0].Label != "ref (cpu)" || !strings.Contains(strings.Join(merged[0].Notes, ";"), "2 runs merged") {
		t.Fatalf("merged %+v", merged)
	}
}

func TestFormats(t *testing.T) {
	recs := reporttest.SeedLike()
	var md bytes.Buffer
	if err := (Reporter{W: &md}).Write(FormatMarkdown, recs); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, w := range []string{"# lmdrive benchmark digest", "\n## FP16\n", "\n### qwen2.5-32b (random weights)\n", "\n## INT8\n", Header,
		"| 2026-12-05 | ref (cuda, tp=1) | 10k->0.8k | 7.50 (net) / 10.00 (with load) | 106.69 (net) / 80.01 (with load) | 800 |",
		"| 2026-12-05 | turbomind (tp=2) | 20k->1k |", "| 513 |", "| 2026-12-05 | ref (cpu, int8) | 10k->0.8k | — | — | — | failed: engine ref: load: out of memory"} {
		if !strings.Contains(out, w) {
			t.Errorf("markdown lacks %q", w)
		}
	}
	if strings.Index(out, "## FP16") > strings.Index(out, "## INT8") {
		t.Error("precision sections out of order")
	}

	var c bytes.Buffer
	if err := (Reporter{W: &c}).Write(FormatCSV, recs); err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(lines) != 7 || len(lines[0]) != 25 {
		t.Fatalf("csv: %v, %d lines", err, len(lines))
	}
	if l := lines[2]; l[2] != "qwen2.5-32b (random weights)" || l[7] != "3" || l[8] != "21" || l[9] != "20" || l[10] != "26" || l[11] != "0.75" {
		t.Fatalf("csv row %q", l)
	}

	var j bytes.Buffer
	if err := (Reporter{W: &j}).Write(FormatJSON, recs); err != nil {
		t.Fatal(err)
	}
	var back Digest
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || len(back.Tables) != 3 || back.Tables[1].Rows[0].Stats.Runtime.Interval.Confidence != 0.75 ||
		back.Tables[0].Rows[0].Stats.Runtime.Interval.Confidence != 0.5 || back.Tables[2].Rows[0].Error == "" {
		t.Fatalf("json: %v %+v", err, back)
	}

	var g bytes.Buffer
	if err := (Reporter{W: &g}).Write(FormatGoBench, recs); err != nil {
		t.Fatal(err)
	}
	gb := g.String()
	name := "BenchmarkGenerate/model=qwen2.5-32b/precision=fp16/label=ref_cuda_tp=1_prompt:_random_token_IDs_seed_1/prompt=20000/gen=1000 1 "
	if strings.Count(gb, name) != 3 || !strings.Contains(gb, "Unit tok/s better=higher") || strings.Contains(gb, "int8_failed") {
		t.Fatalf("gobench:\n%s", gb)
	}
	if err := (Reporter{W: &g}).Write("xml", recs); err == nil || !strings.Contains(err.Error(), `--format "xml": want markdown, csv, json, gobench`) {
		t.Fatalf("bad format: %v", err)
	}
	if err := (Reporter{W: &g}).Write(FormatMarkdown, nil); err == nil {
		t.Fatal("an empty report was accepted")
	}
}

func TestRunReport(t *testing.T) {
	var b bytes.Buffer
	recs := reporttest.Repeats(reporttest.Fixture{Run: "x", Label: "fake", Model: "random:tiny", Dtype: "fp32", Prompt: 16, MaxNew: 10, TTFT: 0.1, Warmup: 1}, 0.5, 0.7)
	if err := (Reporter{W: &b}).Run(recs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "| 2026-12-05 | fake | 0.016k->0.01k | 0.60 | 17.14 | 10 |") || !strings.Contains(out, "interval of the median") ||
		!strings.Contains(out, "[0.5, 0.7] at 50%") || !strings.Contains(out, "(2 repeats: the interval is their range") {
		t.Fatalf("run report:\n%s", out)
	}
}

func TestEnergyPerToken(t *testing.T) {
	r := reporttest.Fixture{Run: "e", Label: "ref", Model: "random:tiny", Dtype: "fp16", Prompt: 16, MaxNew: 10, TTFT: 0.1, Runtime: 1, Warmup: 1}.Record()
	r.Telemetry = &cuda.RunTelemetry{Energy: []cuda.GPUEnergy{{Total: cuda.PhaseEnergy{EnergyJ: cuda.Known(30.0)}}, {Total: cuda.PhaseEnergy{EnergyJ: cuda.Known(20.0)}}}}
	row := Build([]bench.Record{r}, Options{}).Rows()[0]
	if row.Stats.EnergyPerToken == nil || row.Stats.EnergyPerToken.Median != 5 || !strings.Contains(strings.Join(row.Notes, ";"), "energy 5 J/token") {
		t.Fatalf("%+v %q", row.Stats.EnergyPerToken, row.Notes)
	}
}

func TestFilter(t *testing.T) {
	recs := reporttest.SeedLike()
	count := func(f Filter) int { return len(f.Apply(recs)) }
	if n := count(Filter{Runs: []string{"r2", "r3"}}); n != 5 {
		t.Errorf("runs: %d", n)
	}
	if n := count(Filter{Engines: []string{"turbomind"}}); n != 1 {
		t.Errorf("engine by label: %d", n)
	}
	if n := count(Filter{Models: []string{"14B"}}); n != 4 {
		t.Errorf("model: %d", n)
	}
	if n := count(Filter{Since: reporttest.Day.Add(90 * time.Second)}); n != 1 {
		t.Errorf("since: %d", n)
	}
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{"2026-12-01": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "7d": now.Add(-7 * 24 * time.Hour), "36h": now.Add(-36 * time.Hour)} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSince("last week", now); err == nil || !strings.Contains(err.Error(), "how long ago (36h, 7d)") {
		t.Errorf("bad --since: %v", err)
	}
}

func TestKiloMatchesDigest(t *testing.T) {
	for n, want := range map[int]string{10000: "10k", 800: "0.8k", 20000: "20k", 1000: "1k", 2048: "2.048k"} {
		if got := Kilo(n); got != want {
			t.Errorf("Kilo(%d) = %s, want %s", n, got, want)
		}
	}
	if formatCount(1000) != "1,000" || formatCount(1234567) != "1,234,567" || formatCount(513) != "513" {
		t.Error("formatCount")
	}
}
