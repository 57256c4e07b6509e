package checkpoint

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The Python worker's preset table (engine hf's random:<preset>) is
// generated from this package's table like the reference engine's; the same
// -update flag rewrites it:
//
//	go test ./driver/checkpoint -run TestPythonPresetTable -update
const pythonPresetTable = "../pyworker/lmdrive_py/presets_table.py"

func TestPythonPresetTable(t *testing.T) {
	want := renderPythonPresetTable()
	if *updateNative {
		if err := os.WriteFile(pythonPresetTable, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(pythonPresetTable)
	if err != nil {
		t.Fatalf("read the generated table: %v", err)
	}
	if string(got) != want {
		t.Fatalf("driver/pyworker/lmdrive_py/presets_table.py is stale; regenerate it with\n  go test ./driver/checkpoint -run TestPythonPresetTable -update\nfirst difference: %s",
			firstDifference(string(got), want))
	}
	for _, row := range []string{`("tiny", 151936, 64, 176, 2, 4, 2, True, 32768, 1e+06, 1e-06),`, `EOS_IDS = [151645, 151643]`} {
		if !strings.Contains(want, row) {
			t.Errorf("rendered table lacks %s", row)
		}
	}
}

// renderPythonPresetTable writes the Go table as a Python module.
func renderPythonPresetTable() string {
	var b strings.Builder
	b.WriteString(`# Code generated from driver/checkpoint/preset.go by
#   go test ./driver/checkpoint -run TestPythonPresetTable -update
# DO NOT EDIT: the Go table is the one source of the model presets, and that
# test fails while this file differs from it.

# name, vocab, hidden, intermediate, layers, heads, kv_heads, tied, max_positions, rope_theta, rms_norm_eps
PRESETS = [
`)
	py := map[bool]string{true: "True", false: "False"}
	for _, p := range presets {
		fmt.Fprintf(&b, "    (%q, %d, %d, %d, %d, %d, %d, %s, %d, %s, %s),\n", p.Name, p.Vocab, p.Hidden, p.Intermediate,
			p.Layers, p.Heads, p.KVHeads, py[p.Tied], p.MaxPositions, cFloat(p.RopeTheta), cFloat(p.RMSNormEps))
	}
	ids := make([]string, len(EOSIDs))
	for i, id := range EOSIDs {
		ids[i] = fmt.Sprint(id)
	}
	fmt.Fprintf(&b, "]\n\n# The EOS set of random presets (Qwen2.5's <|im_end|> and <|endoftext|>), as generation_config.json lists it.\nEOS_IDS = [%s]\n",
		strings.Join(ids, ", "))
	return b.String()
}
