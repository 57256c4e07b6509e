package bench

import (
	"encoding/json"
	"fmt"
	"os"
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
	Schema   string         `json:"schema"`
	RunID    string         `json:"run_id"`
	Repeat   int            `json:"repeat"`
	Time     time.Time      `json:"time"`
	Status   string         `json:"status"` // StatusOK, StatusError or StatusInterrupted
	Error    string         `json:"error,omitempty"`
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
}

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
}

// Output is the generated sequence.
type Output struct {
	IDs       []int32 `json:"ids"`
	OffsetsNs []int64 `json:"offsets_ns"`
	Bundles   []int   `json:"bundles"`
}

// ReadRecords reads every record of a results file.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	dec := json.NewDecoder(f)
	for dec.More() {
		var r Record
		if err := dec.Decode(&r); err != nil {
			return out, fmt.Errorf("%s: record %d: %w", path, len(out)+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
