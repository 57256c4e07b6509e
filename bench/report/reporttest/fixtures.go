// Package reporttest makes synthetic result records for the tests of the
// report packages: fakes shaped like what lmdrive run records, never used
// by the product.
package reporttest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// Day is the date every fixture record carries.
var Day = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// Fixture builds one successful repeat as lmdrive run records it: out of
// maxNew tokens in runtime seconds, the first after ttft.
type Fixture struct {
	Run, Label, Model, Dtype string
	Repeat, Prompt, MaxNew   int
	Out                      int // output tokens; 0: MaxNew
	Runtime, TTFT, Load      float64
	Warmup                   int
	Source                   string // prompt source; "": random ids
	Config                   string // engine config JSON
	Host                     string
}

// Record is the fixture as a record.
func (f Fixture) Record() bench.Record {
	if f.Out == 0 {
		f.Out = f.MaxNew
	}
	if f.Source == "" {
		f.Source = "random token IDs, seed 1"
	}
	if f.Config == "" {
		f.Config = `{"model":"` + f.Model + `","device":"cuda"}`
	}
	m := &bench.Metrics{OutputTokens: f.Out, LoadS: f.Load, TTFTS: f.TTFT, DecodeS: f.Runtime - f.TTFT, RuntimeS: f.Runtime,
		RuntimeWithLoadS: f.Runtime + f.Load, TokPerS: float64(f.Out) / f.Runtime, DecodeTokPerS: float64(f.Out-1) / (f.Runtime - f.TTFT)}
	ids := make([]int32, f.Out)
	offsets := make([]int64, f.Out)
	bundles := make([]int, f.Out)
	for i := range ids {
		ids[i] = int32(100 + i)
		offsets[i] = int64((f.TTFT + float64(i)*(f.Runtime-f.TTFT)/float64(max(f.Out-1, 1))) * 1e9)
		bundles[i] = 1
	}
	res := &driver.Result{Finish: driver.FinishLength, PromptTokens: f.Prompt, OutputTokens: f.Out, MaxNewRequested: f.MaxNew,
		MaxNewEffective: f.MaxNew, IgnoreEOSApplied: true, StopIDs: []int32{151643, 151645}}
	return bench.Record{Schema: bench.Schema, RunID: f.Run, Repeat: f.Repeat, Time: Day.Add(time.Duration(f.Repeat) * time.Minute),
		Status: "ok", Label: f.Label, Host: bench.Host{Hostname: cmp.Or(f.Host, "h200-a")}, Tool: bench.Tool{Version: "dev", Commit: "abc123"},
		Engine:   driver.Info{Engine: "ref", Backend: "ref-cuda", Dtype: f.Dtype, LoadNs: int64(f.Load * 1e9), EOSIDs: []int32{151643, 151645}},
		Workload: bench.Workload{Model: f.Model, MaxNew: f.MaxNew, IgnoreEOS: true, Warmup: f.Warmup, Repeats: 2, EngineConfig: json.RawMessage(f.Config)},
		Prompt:   bench.Prompt{Tokens: f.Prompt, Hash: "sha256:" + f.Source, Source: f.Source},
		Metrics:  m, Result: res, Output: &bench.Output{IDs: ids, OffsetsNs: offsets, Bundles: bundles}}
}

// Repeats makes one record per runtime, repeats 0, 1, …
func Repeats(f Fixture, runtimes ...float64) []bench.Record {
	var out []bench.Record
	for i, rt := range runtimes {
		f.Repeat, f.Runtime = i, rt
		out = append(out, f.Record())
	}
	return out
}

// SeedLike is a small results file shaped like the seed digest: two models,
// two precisions, an early stop, a failed load, and two runs that differ
// only in their prompt.
func SeedLike() []bench.Record {
	var recs []bench.Record
	recs = append(recs, Repeats(Fixture{Run: "r1", Label: "ref (cuda, tp=1)", Model: "random:qwen2.5-14b", Dtype: "fp16", Prompt: 10000, MaxNew: 800, TTFT: 0.7, Load: 2.5, Warmup: 1}, 7.4, 7.6)...)
	recs = append(recs, Repeats(Fixture{Run: "r2", Label: "ref (cuda, tp=1)", Model: "random:qwen2.5-32b", Dtype: "fp16", Prompt: 20000, MaxNew: 1000, TTFT: 1.7, Load: 4}, 20.0, 21.0, 26.0)...)
	// The same workload with a text prompt instead of random ids.
	recs = append(recs, Repeats(Fixture{Run: "r3", Label: "ref (cuda, tp=1)", Model: "random:qwen2.5-32b", Dtype: "fp16", Prompt: 20000, MaxNew: 1000, TTFT: 1.7, Load: 4,
		Warmup: 1, Source: "text (mixed), seed 1, ChatML"}, 20.5, 20.7)...)
	// An early stop: ignore_eos was applied but <|im_end|> stayed a stop id.
	early := Fixture{Run: "r4", Label: "turbomind (tp=2)", Model: "random:qwen2.5-32b", Dtype: "fp16", Prompt: 20000, MaxNew: 1000, Out: 513, TTFT: 1.2, Runtime: 18.46, Load: 30, Warmup: 1}.Record()
	early.Result.Finish = driver.FinishEOS
	early.Output.IDs[len(early.Output.IDs)-1] = 151645
	recs = append(recs, early)
	// int8 weights: a failed load, and a run.
	failed := bench.ErrorRecord("ref (cpu, int8)", bench.Tool{}, bench.Workload{Model: "random:qwen2.5-14b", MaxNew: 800, Repeats: 2,
		EngineConfig: json.RawMessage(`{"weights":"int8"}`)}, bench.Prompt{Tokens: 10000}, fmt.Errorf("engine ref: load: out of memory\nmore detail"))
	failed.RunID, failed.Time, failed.Host.Hostname = "r5", Day, "h200-a"
	recs = append(recs, failed)
	recs = append(recs, Repeats(Fixture{Run: "r6", Label: "ref (cpu, int8)", Model: "random:qwen2.5-14b", Dtype: "int8/fp32", Prompt: 10000, MaxNew: 800, TTFT: 30, Load: 9, Warmup: 1}, 300)...)
	return recs
}
