package plots

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/bench/report"
	"github.com/lmdrive/lmdrive/bench/report/reporttest"
	"github.com/lmdrive/lmdrive/cuda"
)

// Each table with a measured run gets its time-per-token, tok/s and TTFT
// plots, and an energy plot where GPU telemetry was recorded; each SVG is
// well-formed XML that names its data.
func TestDraw(t *testing.T) {
	recs := reporttest.SeedLike()
	for i := range recs {
		if recs[i].RunID == "r1" {
			recs[i].Telemetry = &cuda.RunTelemetry{Energy: []cuda.GPUEnergy{{Total: cuda.PhaseEnergy{EnergyJ: cuda.Known(4000.0)}}}}
		}
	}
	figs, err := Draw(report.Build(recs, report.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range figs.Figures {
		names = append(names, f.Name)
		if err := xml.Unmarshal(f.SVG, new(struct{})); err != nil {
			t.Errorf("%s is not well-formed: %v", f.Name, err)
		}
		if !strings.HasPrefix(string(f.Inline()), "<svg") {
			t.Errorf("%s inline form starts %q", f.Name, f.Inline()[:20])
		}
	}
	want := "token-latency_qwen2.5-14b_fp16 tok-s_qwen2.5-14b_fp16 ttft_qwen2.5-14b_fp16 energy_qwen2.5-14b_fp16 " +
		"token-latency_qwen2.5-32b_fp16 tok-s_qwen2.5-32b_fp16 ttft_qwen2.5-32b_fp16 " +
		"token-latency_qwen2.5-14b_int8 tok-s_qwen2.5-14b_int8 ttft_qwen2.5-14b_int8"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("figures\n%s\nwant\n%s", got, want)
	}
	if len(figs.Skipped) != 2 || !strings.Contains(figs.Skipped[0], "qwen2.5-32b (random weights), FP16: no GPU telemetry") {
		t.Fatalf("skipped %q", figs.Skipped)
	}
	tokS := string(figs.Figures[5].SVG)
	for _, w := range []string{"Tok/s by engine", "turbomind (tp=2) 20k-&gt;1k", "[prompt: text (mixed), seed 1, ChatML]"} {
		if !strings.Contains(tokS, w) {
			t.Errorf("tok/s plot lacks %q", w)
		}
	}
	if figs.Figures[0].Table != 0 || figs.Figures[4].Table != 1 || figs.Figures[9].Table != 2 {
		t.Error("figures point at the wrong tables")
	}
}
