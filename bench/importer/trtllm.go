package importer

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// What trtllm-bench's numbers mean (tensorrt_llm/bench/dataclasses/
// reporting.py and statistics.py).
var (
	trtReportDefs = map[string]string{
		"runtime_s":     "average request latency: submit to the final response (host perf_counter_ns), over all requests",
		"ttft_s":        "average time to first token of streamed requests (absent without --streaming)",
		"tok_s":         "per-user output throughput: a request's output tokens over its end-to-end latency, averaged",
		"decode_tok_s":  "per-user generation speed: tokens after the first over the time after the first, averaged",
		"output_tokens": "average output length over the requests",
	}
	trtRequestDefs = map[string]string{
		"runtime_s":     "end_to_end_latency: submit to the final response (host perf_counter_ns)",
		"ttft_s":        "time_to_first_token: submit to the first streamed response (0 without --streaming)",
		"output_tokens": "tokens in the responses",
		"itl_ms":        "intertoken_latency: (end − first token) / (tokens − 1), one average per request, not a distribution",
	}
)

func readTRTLLM(b []byte, _ string, o Options) ([]bench.Record, error) {
	v, err := decodeAny(b)
	if err != nil {
		return nil, err
	}
	switch doc := v.(type) {
	case map[string]any:
		if object(doc, "performance") != nil {
			return trtReport(doc, o)
		}
	case []any:
		if len(doc) > 0 {
			if first, _ := doc[0].(map[string]any); first != nil && first["end_to_end_latency"] != nil {
				return trtRequests(doc, o)
			}
		}
	}
	return nil, fmt.Errorf("neither a trtllm-bench --report_json (performance, engine, world_info) nor a --request_json (a list of requests with end_to_end_latency)")
}

// trtEngine reads the engine and world sections of a report.
func trtEngine(doc map[string]any, o Options) driver.Info {
	eng, world := object(doc, "engine"), object(doc, "world_info")
	info := driver.Info{Engine: "trtllm", Backend: "trtllm-bench " + strings.ToLower(text(eng, "backend")), Version: text(eng, "version"),
		Model: cmp.Or(o.Model, text(eng, "model")), Dtype: o.Precision, TPSize: max(o.TP, 1)}
	if info.Dtype == "" {
		info.Dtype = shortDtype(text(eng, "dtype"))
		if q := text(eng, "quantization"); q != "" && !strings.EqualFold(q, "none") {
			info.Dtype = strings.ToLower(q)
		}
	}
	if tp, ok := number(world, "tp_size"); ok && o.TP == 0 {
		info.TPSize = int(tp)
	}
	if v, ok := number(eng, "max_sequence_length"); ok {
		info.MaxSeqLen = int(v)
	}
	return info
}

// trtReport is the one record of a --report_json: its averages.
func trtReport(doc map[string]any, o Options) ([]bench.Record, error) {
	perf, req, stream := object(doc, "performance"), object(doc, "request_info"), object(doc, "streaming_metrics")
	lat, ok1 := number(perf, "avg_request_latency_ms")
	outLen, ok2 := number(req, "avg_output_length")
	inLen, _ := number(req, "avg_input_length")
	n, _ := number(req, "num_requests")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("the report lacks performance.avg_request_latency_ms or request_info.avg_output_length")
	}
	info := trtEngine(doc, o)
	ttft, _ := number(stream, "avg_ttft_ms")
	out := int(outLen + 0.5)
	m := metricsOf(out, lat/1000, ttft/1000)
	m.RuntimeWithLoadS = 0
	if v, ok := number(perf, "output_throughput_per_user_tok_s"); ok {
		m.TokPerS = v
	}
	if v, ok := number(stream, "token_output_speed_tok_s"); ok {
		m.DecodeTokPerS = v
	}
	maxNew := max(o.MaxNew, out)
	r := bench.Record{Status: "ok", Label: fmt.Sprintf("TensorRT-LLM trtllm-bench (tp=%d)", info.TPSize), Engine: info,
		Workload: bench.Workload{Model: info.Model, MaxNew: maxNew, IgnoreEOS: true},
		Prompt:   bench.Prompt{Tokens: cmp.Or(o.PromptTokens, int(inLen+0.5)), Source: "trtllm-bench dataset"},
		Metrics:  m,
		Imported: &bench.Imported{From: "trtllm-bench report", Requests: int(n), Aggregate: true, Definitions: trtReportDefs}}
	return []bench.Record{r}, nil
}

// trtRequests is one record per request of a --request_json.
func trtRequests(list []any, o Options) ([]bench.Record, error) {
	label := "TensorRT-LLM trtllm-bench"
	if o.TP > 0 {
		label += fmt.Sprintf(" (tp=%d)", o.TP)
	}
	info := driver.Info{Engine: "trtllm", Backend: "trtllm-bench", Model: o.Model, Dtype: o.Precision, TPSize: max(o.TP, 1)}
	defs := trtRequestDefs
	if o.MaxNew == 0 {
		defs = withDef(defs, "max_new_tokens", "not in the file (give --max-new): taken as each request's output length, so early stops cannot show")
	}
	var recs []bench.Record
	for i, item := range list {
		q, _ := item.(map[string]any)
		e2e, ok1 := number(q, "end_to_end_latency")
		out, ok2 := number(q, "output_tokens")
		if !ok2 {
			out, ok2 = number(q, "num_output_tokens")
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("request %d lacks end_to_end_latency or output_tokens", i)
		}
		ttft, _ := number(q, "time_to_first_token")
		in, _ := number(q, "num_input_tokens")
		m := metricsOf(int(out), e2e/1e9, ttft/1e9)
		m.RuntimeWithLoadS = 0
		if itl, ok := number(q, "intertoken_latency"); ok {
			m.ITLms = bench.ITL{P50: itl / 1e6, P90: itl / 1e6, P99: itl / 1e6, Max: itl / 1e6}
		}
		r := bench.Record{Status: "ok", Label: label, Engine: info,
			Workload: bench.Workload{Model: o.Model, MaxNew: cmp.Or(o.MaxNew, int(out)), IgnoreEOS: true},
			Prompt:   bench.Prompt{Tokens: cmp.Or(o.PromptTokens, int(in)), Source: "trtllm-bench dataset"},
			Metrics:  m,
			Imported: &bench.Imported{From: "trtllm-bench requests", Requests: 1, Definitions: defs}}
		if errTokens, _ := number(q, "error_tokens"); errTokens > 0 {
			r.Status, r.Metrics, r.Error = "error", nil, fmt.Sprintf("trtllm-bench: request %d reported %d error responses", i, int(errTokens))
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("the request list is empty")
	}
	return recs, nil
}
