package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/lmdrive/lmdrive/bench"
	"github.com/lmdrive/lmdrive/driver"
)

// Cell is one measurement of the matrix: one engine configuration, model,
// precision, TP size, batch size and workload, with the plan's repeats.
type Cell struct {
	// Index is the cell's place in the whole plan, the same on every host.
	Index     int
	Engine    Engine
	Model     string
	Precision string
	TP        int
	Batch     int
	Workload  Workload
	Repeats   int
	Warmup    int
	IgnoreEOS bool
	// Config is the engine's JSON config: what the engine is opened with.
	Config json.RawMessage
	// Session is shared by the cells that can run on one loaded engine:
	// the same engine, library settings and config.
	Session string
	// Key identifies the measurement: everything above that shapes it.
	Key string
}

// Name is the cell for a person: "ref fp16 tp=1 random:qwen2.5-14b 10k->0.8k".
func (c Cell) Name() string {
	parts := []string{c.Engine.Engine}
	if c.Precision != "" {
		parts = append(parts, c.Precision)
	}
	parts = append(parts, fmt.Sprintf("tp=%d", c.TP))
	if c.Batch > 1 {
		parts = append(parts, fmt.Sprintf("batch=%d", c.Batch))
	}
	return strings.Join(append(parts, c.Model, kilo(c.Workload.Prompt)+"->"+kilo(c.Workload.Gen)), " ")
}

// Label is the Engine / Config text of the cell's rows: the engine entry's
// label, or the engine with what distinguishes its configuration. The
// digest has a table per model and precision, so neither is repeated here
// unless the plan's label says so.
func (c Cell) Label() string {
	if c.Engine.Label != "" {
		return c.Engine.Label
	}
	var parts []string
	if c.Engine.Device != "" {
		parts = append(parts, c.Engine.Device)
	}
	parts = append(parts, fmt.Sprintf("tp=%d", c.TP))
	if c.Batch > 1 {
		parts = append(parts, fmt.Sprintf("batch=%d", c.Batch))
	}
	if c.IgnoreEOS {
		parts = append(parts, "ignore_eos")
	}
	return fmt.Sprintf("%s (%s)", c.Engine.Engine, strings.Join(parts, ", "))
}

// Work is what the cell generates, the unit of the sweep's ETA.
func (c Cell) Work() float64 {
	return float64((c.Warmup + c.Repeats) * c.Workload.Gen)
}

// Cells expands the plan into its cells, in a fixed order: engines, models,
// precisions, TP sizes, batch sizes, workloads. Cells that share a loaded
// engine are therefore next to each other.
func (p Plan) Cells() ([]Cell, error) {
	var out []Cell
	for _, e := range p.Engines {
		for _, model := range e.Models {
			for _, prec := range e.Precision {
				for _, tp := range e.TP {
					cfg, err := e.config(model, prec, tp, p.Seed)
					if err != nil {
						return nil, fmt.Errorf("plan %s: engine %s, model %s: %w", p.Name, e.Engine, model, err)
					}
					session := hashOf(e.Engine, string(cfg), strconv.FormatBool(e.Reload))
					for _, batch := range p.Batch {
						for _, w := range e.Workloads {
							c := Cell{Index: len(out), Engine: e, Model: model, Precision: prec, TP: tp, Batch: batch, Workload: w,
								Repeats: p.Repeats, Warmup: *p.Warmup, IgnoreEOS: *p.IgnoreEOS, Config: cfg, Session: session}
							if e.Reload {
								c.Session += "-" + strconv.Itoa(c.Index)
							}
							c.Key = c.key(p)
							out = append(out, c)
						}
					}
				}
			}
		}
	}
	return out, nil
}

// key hashes what shapes the measurement, so that a finished cell is
// recognised when the sweep resumes, and a changed one is not.
func (c Cell) key(p Plan) string {
	promptSpec, _ := json.Marshal(p.Prompt)
	return hashOf(c.Engine.Engine, string(c.Config), c.Precision, strconv.Itoa(c.Batch), strconv.Itoa(c.Workload.Prompt),
		strconv.Itoa(c.Workload.Gen), strconv.Itoa(c.Repeats), strconv.Itoa(c.Warmup), strconv.FormatBool(c.IgnoreEOS),
		string(promptSpec), strconv.FormatUint(p.Seed, 10), c.Label())
}

// config renders the engine config of one model, precision and TP size:
// the settings lmdrive's flags would give (--precision for the ref engine),
// a plan's precision keys for other engines, then the engine entry's own
// config over them.
func (e Engine) config(model, precision string, tp int, seed uint64) (json.RawMessage, error) {
	extra := map[string]any{}
	pc, err := e.precisionConfig(precision)
	if err != nil {
		return nil, err
	}
	for k, v := range pc {
		extra[k] = v
	}
	for k, v := range e.Config {
		extra[k] = v
	}
	extraJSON := ""
	if len(extra) > 0 {
		b, err := json.Marshal(extra)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		extraJSON = string(b)
	}
	device := e.Device
	if device == "" {
		device = "cpu"
	}
	settings := driver.EngineSettings{Engine: e.Engine, Model: model, Seed: seed, Device: device, Threads: e.Threads, TP: tp, Extra: extraJSON}
	if _, planned := e.Precisions[precision]; e.Engine == "ref" && !planned {
		settings.Precision = precision
	}
	return settings.Config()
}

// Shard returns shard i of n (0 ≤ i < n): a contiguous run of cells in
// plan order, the same on every host, sized within one cell of the others.
// Contiguous runs keep the cells of one loaded engine together.
func Shard(cells []Cell, i, n int) []Cell {
	lo, hi := len(cells)*i/n, len(cells)*(i+1)/n
	return cells[lo:hi]
}

// ParseShard reads "i/n".
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 ≤ i < n, such as 0/4 (with Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", s)
	}
	return i, n, nil
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func kilo(n int) string {
	return strconv.FormatFloat(float64(n)/1000, 'f', -1, 64) + "k"
}

// Ref marks a record as belonging to a cell.
func (c Cell) Ref(plan string) *bench.SweepCell {
	return &bench.SweepCell{Plan: plan, Cell: c.Key, Name: c.Name(), Precision: c.Precision, Batch: c.Batch}
}
