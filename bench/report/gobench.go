package report

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
)

// WriteGoBench writes records in the Go benchmark format, so that benchstat
// (golang.org/x/perf/cmd/benchstat) can compare two runs:
//
//	lmdrive report --format gobench old.jsonl > old.txt
//	lmdrive report --format gobench new.jsonl > new.txt
//	benchstat old.txt new.txt
//
// Each measured repeat is one line. Every run of one configuration and
// workload shares a benchmark name (the merged digest row's label, which
// names what sets look-alike configurations apart), so benchstat sees the
// repeats of all of them as samples of one benchmark.
func WriteGoBench(w io.Writer, recs []bench.Record) error {
	type line struct {
		name string
		r    bench.Record
	}
	var lines []line
	config := map[string]string{}
	for _, row := range Build(recs, Options{Merge: true}).Rows() {
		for _, r := range row.Records {
			if r.Status != "ok" || r.Metrics == nil {
				continue
			}
			name := fmt.Sprintf("BenchmarkGenerate/model=%s/precision=%s/label=%s/prompt=%d/gen=%d", sanitizeName(strings.TrimSuffix(row.Model, " (random weights)")),
				sanitizeName(row.Precision), sanitizeName(row.Label), r.Prompt.Tokens, r.Workload.MaxNew)
			lines = append(lines, line{name, r})
			config["engine-"+sanitizeName(row.Label)] = fmt.Sprintf("%s %s abi %s", r.Engine.Backend, r.Engine.Version, r.Engine.ABI)
			config["lmdrive"] = r.Tool.Version + " " + r.Tool.Commit
			config["host"] = r.Host.Hostname
		}
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
	for _, l := range lines {
		m, name := l.r.Metrics, l.name
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
