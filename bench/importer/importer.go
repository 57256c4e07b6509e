// Package importer turns other benchmark tools' JSON results into lmdrive
// records, marked imported and carrying each tool's own metric definitions,
// so that one digest can hold them beside lmdrive's own runs. The formats
// are those the tools document and write (docs/import.md names the source
// files): vLLM's `vllm bench latency --output-json` (and its PyTorch
// benchmark-format sibling), `vllm bench serve --save-result`, and
// trtllm-bench's `--report_json` and `--request_json`.
package importer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/bench"
)

// Tools import knows.
const (
	VLLM   = "vllm-bench"
	TRTLLM = "trtllm-bench"
)

// Tools lists what --from accepts.
var Tools = []string{VLLM, TRTLLM}

// Options fill in what a results file does not say (vLLM's latency JSON
// holds only latencies) and label the rows.
type Options struct {
	Label        string
	Model        string
	Precision    string
	PromptTokens int
	MaxNew       int
	Batch        int
	TP           int
	// Time stamps records whose file has no date (default: the file's
	// modification time).
	Time time.Time
}

// Read imports one results file of tool.
func Read(tool, path string, o Options) ([]bench.Record, error) {
	if !slices.Contains(Tools, tool) {
		return nil, fmt.Errorf("--from %q: want %s", tool, strings.Join(Tools, " or "))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if o.Time.IsZero() {
		if st, err := os.Stat(path); err == nil {
			o.Time = st.ModTime().UTC()
		}
	}
	var recs []bench.Record
	switch tool {
	case VLLM:
		recs, err = readVLLM(b, path, o)
	case TRTLLM:
		recs, err = readTRTLLM(b, path, o)
	}
	if err != nil {
		return nil, fmt.Errorf("import %s %s: %w", tool, path, err)
	}
	runID := "imported-" + o.Time.Format("20060102T150405Z") + "-" + strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	for i := range recs {
		r := &recs[i]
		r.Schema, r.RunID, r.Repeat = bench.Schema, runID, i
		if r.Time.IsZero() {
			r.Time = o.Time
		}
		if r.Imported != nil {
			r.Imported.File = filepath.Base(path)
		}
		if o.Label != "" {
			r.Label = o.Label
		}
		if o.Model != "" {
			r.Workload.Model = o.Model
		}
		if o.Precision != "" {
			r.Engine.Dtype = o.Precision
		}
		r.Workload.Repeats = len(recs)
	}
	return recs, nil
}

// metricsOf completes the metrics lmdrive derives from runtime, TTFT and
// the token count, where the tool gave those.
func metricsOf(out int, runtime, ttft float64) *bench.Metrics {
	m := &bench.Metrics{OutputTokens: out, RuntimeS: runtime, RuntimeWithLoadS: runtime, TTFTS: ttft}
	if runtime > 0 {
		m.TokPerS = float64(out) / runtime
	}
	if ttft > 0 && runtime > ttft {
		m.DecodeS = runtime - ttft
		if out > 1 {
			m.DecodeTokPerS = float64(out-1) / m.DecodeS
		}
	}
	return m
}

// number reads a JSON number that may be missing or null.
func number(m map[string]any, key string) (float64, bool) {
	v, ok := m[key].(float64)
	return v, ok
}

func object(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func text(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

func decodeAny(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return v, nil
}
