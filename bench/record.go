package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/driver"
)

// Schema names the version of Record; docs/results.md documents it.
const Schema = "lmdrive.result/v1"

// Record is one measured repeat, one line of the results file.
type Record struct {
	Schema   string         `json:"schema"`
	RunID    string         `json:"run_id"`
	Repeat   int            `json:"repeat"`
	Time     time.Time      `json:"time"`
	Status   string         `json:"status"` // "ok" or "error"
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

// Writer appends records to a JSON Lines file, one line per record, flushed
// and synced before Write returns, so a crash loses nothing already written.
// The file (and its folder) is created by the first record: a run that
// fails before measuring anything leaves no empty file behind.
type Writer struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenWriter checks that path can be appended to, without creating it yet.
func OpenWriter(path string) (*Writer, error) {
	w := &Writer{path: path}
	if _, err := os.Stat(path); err == nil {
		if err := w.open(); err != nil {
			return nil, err
		}
		return w, nil
	}
	if err := writableAncestor(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("results file %s: %w", path, err)
	}
	return w, nil
}

// writableAncestor checks that the nearest existing folder on the way to dir
// is a folder this process may write into, so that dir can be created.
func writableAncestor(dir string) error {
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a folder", dir)
			}
			if unix.Access(dir, unix.W_OK) != nil {
				return fmt.Errorf("folder %s is not writable", dir)
			}
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return err
		}
		dir = parent
	}
}

func (w *Writer) open() error {
	if dir := filepath.Dir(w.path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("results file: %w", err)
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	w.f = f
	return nil
}

// Write appends one record durably.
func (w *Writer) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result record: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file, if a record created it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
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
