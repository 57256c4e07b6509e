package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// Schema names the version of Record; docs/results.md documents it.
const Schema = "lmdrive.result/v1"

// Statuses of a record. Only StatusOK records carry metrics.
const (
	StatusOK    = "ok"
	StatusError = "error" // the engine failed; Error says how
	// StatusInterrupted is a repeat stopped by SIGINT or SIGTERM; Result and
	// Output hold what the engine produced until then.
	StatusInterrupted = "interrupted"
)

// Record is one measured repeat, one line of the results file.
type Record struct {
	Schema string    `json:"schema"`
	RunID  string    `json:"run_id"`
	Repeat int       `json:"repeat"`
	Time   time.Time `json:"time"`
	Status string    `json:"status"` // StatusOK, StatusError or StatusInterrupted
	Error  string    `json:"error,omitempty"`
	// Kind is "" for a repeat of one request, KindRequest for one request of
	// a load run (Workload.Load) and KindLoad for the aggregate of a load run.
	Kind     string         `json:"kind,omitempty"`
	Label    string         `json:"label"`
	Tool     Tool           `json:"tool"`
	Host     Host           `json:"host"`
	Engine   driver.Info    `json:"engine"`
	Workload Workload       `json:"workload"`
	Prompt   Prompt         `json:"prompt"`
	Metrics  *Metrics       `json:"metrics,omitempty"`
	Result   *driver.Result `json:"result,omitempty"`
	// Output holds the generated IDs and each token's time after submit (ns).
	Output   *Output   `json:"output,omitempty"`
	Repro    *Repro    `json:"repro,omitempty"`
	Overhead *Overhead `json:"overhead,omitempty"`
	// Telemetry is per-GPU energy by phase and peak memory during the repeat.
	Telemetry *cuda.RunTelemetry `json:"telemetry,omitempty"`
	// Request is one request's place and latencies in a load run (KindRequest).
	Request *RequestTiming `json:"request,omitempty"`
	// Summary aggregates every request of a load run (KindLoad).
	Summary *LoadSummary `json:"summary,omitempty"`
	// Sweep names the plan and cell a sweep measured this record for;
	// resuming a sweep reads it.
	Sweep *SweepCell `json:"sweep,omitempty"`
	// Imported marks a record made from another tool's results.
	Imported *Imported `json:"imported,omitempty"`
}

// SweepCell ties a record to one cell of a sweep plan.
type SweepCell struct {
	// Plan is the plan's name, Cell the key of everything that defines the
	// cell's measurement (engine, config, model, precision, workload,
	// repeats): the same key means the same measurement.
	Plan string `json:"plan"`
	Cell string `json:"cell"`
	// Name is the cell for a person: "ref fp16 tp=1 random:qwen2.5-14b 10k->0.8k".
	Name      string `json:"name"`
	Precision string `json:"precision,omitempty"`
	Batch     int    `json:"batch,omitempty"`
}

// Imported says where a record made from another tool's results came from
// and what that tool's metrics mean, which differ from lmdrive's.
type Imported struct {
	// From is the tool and mode: "vllm bench latency", "trtllm-bench".
	From string `json:"from"`
	File string `json:"file"`
	// Requests is how many requests one imported record stands for: 1 for
	// a per-request sample, more when the tool wrote only an aggregate.
	Requests int `json:"requests"`
	// Aggregate is true when the record holds the tool's averages rather
	// than one measured request.
	Aggregate bool `json:"aggregate,omitempty"`
	// Definitions maps each metric filled in to the tool's own definition.
	Definitions map[string]string `json:"definitions"`
}

// Record kinds of a load run.
const (
	KindRequest = "request"
	KindLoad    = "load"
)

// Tool identifies the lmdrive build that measured.
type Tool struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// Host is the machine the run happened on.
type Host struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
}

// Workload is what was asked of the engine.
type Workload struct {
	Model        string          `json:"model"`
	EngineConfig json.RawMessage `json:"engine_config"`
	MaxNew       int             `json:"max_new_tokens"`
	IgnoreEOS    bool            `json:"ignore_eos"`
	Sampling     driver.Sampling `json:"sampling"`
	Warmup       int             `json:"warmup"`
	Repeats      int             `json:"repeats"`
	// Load sends many requests per run (batch, concurrency or rate); nil
	// sends one.
	Load *Load `json:"load,omitempty"`
}

// Output is the generated sequence.
type Output struct {
	IDs       []int32 `json:"ids"`
	OffsetsNs []int64 `json:"offsets_ns"`
	Bundles   []int   `json:"bundles"`
}

// ReadRecords reads every intact record of a results file. A damaged line
// (cut short by a crash, edited by hand, not a record) is skipped: the
// records still hold every intact line, and the error, a *DamagedLines,
// names each skipped line. Any other error means the file could not be read.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []Record
		damaged = &DamagedLines{Path: path}
		rd      = bufio.NewReaderSize(f, 1<<20)
	)
	for line := 1; ; line++ {
		b, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			if r, perr := parseRecord(b); perr != nil {
				damaged.Lines = append(damaged.Lines, LineError{Line: line, Err: perr})
			} else {
				out = append(out, r)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", path, err)
		}
	}
	if len(damaged.Lines) > 0 {
		return out, damaged
	}
	return out, nil
}

func parseRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if !strings.HasPrefix(r.Schema, "lmdrive.result/") {
		return r, fmt.Errorf("not an lmdrive result record (schema %q)", r.Schema)
	}
	return r, nil
}

// LineError is one damaged line of a results file.
type LineError struct {
	Line int
	Err  error
}

// DamagedLines lists the lines ReadRecords skipped.
type DamagedLines struct {
	Path  string
	Lines []LineError
}

func (d *DamagedLines) Error() string {
	return strings.Join(d.Warnings(), "; ")
}

// Warnings is one line per skipped line, for a person.
func (d *DamagedLines) Warnings() []string {
	out := make([]string, len(d.Lines))
	for i, l := range d.Lines {
		out[i] = fmt.Sprintf("%s line %d skipped: %v", d.Path, l.Line, l.Err)
	}
	return out
}

// ReadRecordsTolerant reads records like ReadRecords and hands every
// skipped line to warn (one line each) instead of failing on it.
func ReadRecordsTolerant(path string, warn func(string)) ([]Record, error) {
	recs, err := ReadRecords(path)
	var d *DamagedLines
	if errors.As(err, &d) {
		for _, w := range d.Warnings() {
			warn(w)
		}
		return recs, nil
	}
	return recs, err
}
