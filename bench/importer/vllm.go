package importer

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// What vLLM's numbers mean (vllm/benchmarks/latency.py, serve.py).
var (
	vllmLatencyDefs = map[string]string{
		"runtime_s":     "vLLM latency: wall time (perf_counter) of one LLM.generate call on the whole batch, prefill and every token included",
		"tok_s":         "output_len / latency, per request; the batch made batch_size × output_len tokens",
		"output_tokens": "output_len as asked with ignore_eos; vLLM does not report what was generated",
		"prompt":        "batch_size prompts of input_len random ids below 10000",
	}
	vllmServeDefs = map[string]string{
		"runtime_s":     "E2EL: client request start to the last streamed chunk, over HTTP",
		"ttft_s":        "client request start to the first streamed chunk with content, over HTTP",
		"itl_ms":        "gaps between streamed chunks as the client saw them",
		"output_tokens": "the server's usage.completion_tokens, else the client's re-tokenized text",
		"tok_s":         "output tokens / E2EL (lmdrive's formula on vLLM's times)",
	}
)

func readVLLM(b []byte, path string, o Options) ([]bench.Record, error) {
	v, err := decodeAny(b)
	if err != nil {
		return nil, err
	}
	switch doc := v.(type) {
	case []any:
		return vllmPyTorch(doc, o)
	case map[string]any:
		if _, ok := doc["latencies"].([]any); ok && doc["avg_latency"] != nil {
			// vLLM writes the run's arguments only into the PyTorch-format
			// sibling; read them from there when it exists.
			sibling := strings.TrimSuffix(path, ".json") + ".pytorch.json"
			if sb, err := os.ReadFile(sibling); err == nil && sibling != path {
				if sv, err := decodeAny(sb); err == nil {
					if list, ok := sv.([]any); ok {
						return vllmPyTorch(list, o)
					}
				}
			}
			return vllmLatency(floats(doc["latencies"]), nil, o)
		}
		if doc["ttfts"] != nil || doc["mean_ttft_ms"] != nil || doc["median_e2el_ms"] != nil {
			return vllmServe(doc, o)
		}
	}
	return nil, fmt.Errorf("neither `vllm bench latency --output-json` (avg_latency, latencies) nor `vllm bench serve --save-result` (ttfts, mean_ttft_ms) JSON")
}

// vllmPyTorch reads the PyTorch benchmark format vLLM writes beside its
// latency JSON (SAVE_TO_PYTORCH_BENCHMARK_FORMAT=1): a list of records
// whose benchmark.extra_info.args are the run's arguments.
func vllmPyTorch(list []any, o Options) ([]bench.Record, error) {
	for _, item := range list {
		rec, _ := item.(map[string]any)
		metric := object(rec, "metric")
		if text(metric, "name") != "latency" {
			continue
		}
		args := object(object(object(rec, "benchmark"), "extra_info"), "args")
		if args == nil {
			return nil, fmt.Errorf("the PyTorch-format record has no benchmark.extra_info.args")
		}
		return vllmLatency(floats(metric["benchmark_values"]), args, o)
	}
	return nil, fmt.Errorf("no latency record in the PyTorch-format list")
}

func vllmLatency(latencies []float64, args map[string]any, o Options) ([]bench.Record, error) {
	if len(latencies) == 0 {
		return nil, fmt.Errorf("the file holds no latencies")
	}
	fill := func(dst *int, key string) {
		if *dst == 0 {
			if v, ok := number(args, key); ok {
				*dst = int(v)
			}
		}
	}
	fill(&o.PromptTokens, "input_len")
	fill(&o.MaxNew, "output_len")
	fill(&o.Batch, "batch_size")
	fill(&o.TP, "tensor_parallel_size")
	if o.Model == "" {
		o.Model = text(args, "model")
	}
	if o.Precision == "" {
		if dt := text(args, "dtype"); dt != "" && dt != "auto" {
			o.Precision = shortDtype(dt)
		}
	}
	if o.PromptTokens == 0 || o.MaxNew == 0 {
		return nil, fmt.Errorf("the latency JSON does not say the prompt and output lengths: give --prompt-tokens and --max-new (and --batch), " +
			"or import the .pytorch.json vLLM writes beside it with SAVE_TO_PYTORCH_BENCHMARK_FORMAT=1")
	}
	o.Batch, o.TP = max(o.Batch, 1), max(o.TP, 1)
	warmup := 0
	if v, ok := number(args, "num_iters_warmup"); ok {
		warmup = int(v)
	}
	label := fmt.Sprintf("vLLM bench latency (tp=%d, batch=%d)", o.TP, o.Batch)
	out := make([]bench.Record, len(latencies))
	for i, l := range latencies {
		m := metricsOf(o.MaxNew, l, 0)
		m.RuntimeWithLoadS = 0
		out[i] = bench.Record{Status: "ok", Label: label,
			Engine:   driver.Info{Engine: "vllm", Backend: "vllm bench latency", Model: o.Model, Dtype: o.Precision, TPSize: o.TP},
			Workload: bench.Workload{Model: o.Model, MaxNew: o.MaxNew, IgnoreEOS: true, Warmup: warmup, Sampling: driver.Sampling{Temperature: 1, TopP: 1}},
			Prompt:   bench.Prompt{Tokens: o.PromptTokens, Source: "vLLM random ids below 10000"},
			Metrics:  m,
			Imported: &bench.Imported{From: "vllm bench latency", Requests: o.Batch, Definitions: vllmLatencyDefs}}
	}
	return out, nil
}

// vllmServe reads `vllm bench serve --save-result`: one record per request
// when the per-request lists are there, else one record of its means.
func vllmServe(doc map[string]any, o Options) ([]bench.Record, error) {
	when := parseVLLMDate(text(doc, "date"))
	if o.Model == "" {
		o.Model = text(doc, "model_id")
	}
	args := object(doc, "client_args")
	if o.MaxNew == 0 {
		for _, k := range []string{"random_output_len", "sonnet_output_len", "output_len"} {
			if v, ok := number(args, k); ok && v > 0 {
				o.MaxNew = int(v)
				break
			}
		}
	}
	label := "vLLM bench serve"
	if b := text(doc, "backend"); b != "" {
		label += " (" + b + ")"
	}
	base := bench.Record{Status: "ok", Label: label, Time: when,
		Engine:   driver.Info{Engine: "vllm", Backend: "vllm bench serve", Model: o.Model, Dtype: o.Precision, TPSize: max(o.TP, 1)},
		Workload: bench.Workload{Model: o.Model, IgnoreEOS: args["ignore_eos"] == true},
	}
	defs := vllmServeDefs
	if o.MaxNew == 0 {
		defs = withDef(defs, "max_new_tokens", "not in the file (give --max-new): taken as each request's output length, so early stops cannot show")
	}
	ttfts := floats(doc["ttfts"])
	if len(ttfts) == 0 {
		return vllmServeMeans(doc, base, o, defs)
	}
	lats, outs, ins := floats(doc["latencies"]), floats(doc["output_lens"]), floats(doc["input_lens"])
	itls, _ := doc["itls"].([]any)
	errs, _ := doc["errors"].([]any)
	if len(lats) != len(ttfts) || len(outs) != len(ttfts) || len(ins) != len(ttfts) {
		return nil, fmt.Errorf("ttfts, latencies, output_lens and input_lens differ in length (%d, %d, %d, %d)", len(ttfts), len(lats), len(outs), len(ins))
	}
	var recs []bench.Record
	for i := range ttfts {
		r := base
		r.Prompt = bench.Prompt{Tokens: int(ins[i]), Source: text(doc, "dataset_name")}
		r.Workload.MaxNew = o.MaxNew
		if r.Workload.MaxNew == 0 {
			r.Workload.MaxNew = int(outs[i])
		}
		r.Imported = &bench.Imported{From: "vllm bench serve", Requests: 1, Definitions: defs}
		if i < len(errs) {
			if e, _ := errs[i].(string); e != "" {
				r.Status, r.Error = "error", "vllm bench serve: "+e
				recs = append(recs, r)
				continue
			}
		}
		m := metricsOf(int(outs[i]), lats[i], ttfts[i])
		m.RuntimeWithLoadS = 0
		if i < len(itls) {
			m.ITLms = itlOf(floats(itls[i]))
		}
		r.Metrics = m
		recs = append(recs, r)
	}
	return recs, nil
}

// vllmServeMeans is the one record of a serve result without per-request
// lists: its mean TTFT, E2EL and output length.
func vllmServeMeans(doc map[string]any, base bench.Record, o Options, defs map[string]string) ([]bench.Record, error) {
	e2el, ok1 := number(doc, "mean_e2el_ms")
	ttft, ok2 := number(doc, "mean_ttft_ms")
	done, ok3 := number(doc, "completed")
	total, ok4 := number(doc, "total_output_tokens")
	input, _ := number(doc, "total_input_tokens")
	if !ok1 || !ok2 || !ok3 || !ok4 || done == 0 {
		return nil, fmt.Errorf("the serve result has neither per-request lists (ttfts) nor mean_e2el_ms, mean_ttft_ms, completed and total_output_tokens")
	}
	out := int(total/done + 0.5)
	r := base
	r.Prompt = bench.Prompt{Tokens: int(input/done + 0.5), Source: text(doc, "dataset_name")}
	r.Workload.MaxNew = max(o.MaxNew, out)
	m := metricsOf(out, e2el/1000, ttft/1000)
	m.RuntimeWithLoadS = 0
	if tpot, ok := number(doc, "mean_tpot_ms"); ok && tpot > 0 {
		m.DecodeTokPerS = 1000 / tpot
	}
	r.Metrics = m
	r.Imported = &bench.Imported{From: "vllm bench serve", Requests: int(done), Aggregate: true,
		Definitions: withDef(defs, "decode_tok_s", "1000 / mean TPOT (ms), TPOT excluding the first token")}
	return []bench.Record{r}, nil
}

func parseVLLMDate(s string) time.Time {
	for _, layout := range []string{"20060102-150405", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// itlOf summarizes gaps in seconds as lmdrive's ITL (nearest rank, ms).
func itlOf(gaps []float64) bench.ITL {
	if len(gaps) == 0 {
		return bench.ITL{}
	}
	ms := make([]float64, len(gaps))
	for i, g := range gaps {
		ms[i] = g * 1000
	}
	slices.Sort(ms)
	rank := func(p float64) float64 {
		k := int(p/100*float64(len(ms)) + 0.999999)
		return ms[max(k, 1)-1]
	}
	return bench.ITL{P50: rank(50), P90: rank(90), P99: rank(99), Max: ms[len(ms)-1]}
}

func floats(v any) []float64 {
	list, _ := v.([]any)
	out := make([]float64, 0, len(list))
	for _, x := range list {
		if f, ok := x.(float64); ok {
			out = append(out, f)
		}
	}
	return out
}

func withDef(defs map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(defs)+1)
	for a, b := range defs {
		out[a] = b
	}
	out[k] = v
	return out
}

// shortDtype names torch dtypes as the digest does: float16 → fp16.
func shortDtype(s string) string {
	s = strings.TrimPrefix(strings.ToLower(s), "torch.")
	switch s {
	case "float16", "half":
		return "fp16"
	case "bfloat16":
		return "bf16"
	case "float32", "float":
		return "fp32"
	}
	return s
}
