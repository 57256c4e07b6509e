package bench

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// WriteGoBench writes records in the Go benchmark format, so that benchstat
// (golang.org/x/perf/cmd/benchstat) can compare two runs:
//
//	lmdrive report --format gobench old.jsonl > old.txt
//	lmdrive report --format gobench new.jsonl > new.txt
//	benchstat old.txt new.txt
//
// Each measured repeat is one line; records with the same label and
// workload share a benchmark name, so benchstat sees them as samples.
func WriteGoBench(w io.Writer, recs []Record) error {
	config := map[string]string{}
	for _, r := range recs {
		if r.Status != "ok" {
			continue
		}
		config["engine-"+sanitizeName(r.Label)] = fmt.Sprintf("%s %s abi %s", r.Engine.Backend, r.Engine.Version, r.Engine.ABI)
		config["lmdrive"] = r.Tool.Version + " " + r.Tool.Commit
		config["host"] = r.Host.Hostname
	}
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "%s: %s\n", k, config[k]); err != nil {
			return err
		}
	}
	units := []string{"tok/s better=higher", "decode-tok/s better=higher", "ttft-ns better=lower", "itl-p99-ns better=lower", "tokens better=higher"}
	for _, u := range units {
		fmt.Fprintf(w, "Unit %s\n", u)
	}
	for _, r := range recs {
		if r.Status != "ok" || r.Metrics == nil || r.Kind != "" {
			continue
		}
		m := r.Metrics
		name := fmt.Sprintf("BenchmarkGenerate/label=%s/prompt=%d/gen=%d", sanitizeName(r.Label), r.Prompt.Tokens, r.Workload.MaxNew)
		if _, err := fmt.Fprintf(w, "%s 1 %.0f ns/op %.4g tok/s %.4g decode-tok/s %.0f ttft-ns %.0f itl-p99-ns %d tokens\n",
			name, m.RuntimeS*1e9, m.TokPerS, m.DecodeTokPerS, m.TTFTS*1e9, m.ITLms.P99*1e6, m.OutputTokens); err != nil {
			return err
		}
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.:=+-]+`)

// sanitizeName makes a label usable inside a benchmark name (no spaces or slashes).
func sanitizeName(s string) string {
	return strings.Trim(unsafeName.ReplaceAllString(s, "_"), "_")
}
