package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reference engine's own check values (native/ref/tests): both sides
// must draw the same weights.
func TestRandomMatchesReferenceEngine(t *testing.T) {
	if got := fnv1a64("a"); got != 0xaf63dc4c8601ec8c {
		t.Fatalf("fnv1a64(a) = %#x", got)
	}
	p, _ := LookupPreset("tiny")
	got := make([]float32, 4)
	p.Tensors()[0].Fill(1, 0, got)
	want := []uint32{0xbf5177f4, 0xbf08a1a2, 0xbf4de3fa, 0xbf0fc174}
	for i := range want {
		if math.Float32bits(got[i]) != want[i] {
			t.Fatalf("embed_tokens[%d] = %#x, want %#x", i, math.Float32bits(got[i]), want[i])
		}
	}
}

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		v       float32
		f16, bf uint16
	}{
		{1, 0x3C00, 0x3F80}, {-2, 0xC000, 0xC000}, {0.1, 0x2E66, 0x3DCD}, {0, 0, 0},
		{1.0 / 16384 / 1024, 0x0001, 0x3380}, // smallest half subnormal
	}
	for _, c := range cases {
		if got := toF16(c.v); got != c.f16 {
			t.Errorf("toF16(%g) = %#04x, want %#04x", c.v, got, c.f16)
		}
		if got := toBF16(c.v); got != c.bf {
			t.Errorf("toBF16(%g) = %#04x, want %#04x", c.v, got, c.bf)
		}
	}
}

func TestWriteLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	p, _ := LookupPreset("tiny")
	if err := Write(dir, p, Options{Seed: 7, Dtype: "bf16"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Fatalf("header length %d is not 8-aligned", n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	if len(hdr) != len(p.Tensors())+1 {
		t.Fatalf("%d header entries for %d tensors", len(hdr), len(p.Tensors()))
	}
	if want := 8 + int(n) + 2*int(p.Parameters()); len(b) != want {
		t.Fatalf("file is %d bytes, want %d", len(b), want)
	}
	var cfg map[string]any
	cb, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(cb, &cfg)
	if cfg["model_type"] != "qwen2" || cfg["tie_word_embeddings"] != true || cfg["torch_dtype"] != "bfloat16" {
		t.Fatalf("config %v", cfg)
	}
	if err := Write(dir, p, Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second write into the same folder: %v", err)
	}
	if err := Write(t.TempDir()+"/x", p, Options{Dtype: "int8"}); err == nil || !strings.Contains(err.Error(), "int8") {
		t.Fatalf("bad dtype: %v", err)
	}
}

func TestPresetShapesMatchQwen(t *testing.T) {
	// Parameter counts of the released models, in billions (rounded).
	for name, want := range map[string]float64{"qwen2.5-0.5b": 0.494, "qwen2.5-7b": 7.62, "qwen2.5-14b": 14.8, "qwen2.5-32b": 32.8, "qwen2.5-72b": 72.7} {
		p, err := LookupPreset(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(p.Parameters()) / 1e9; math.Abs(got-want)/want > 0.005 {
			t.Errorf("%s: %.3fB parameters, want %.3gB", name, got, want)
		}
	}
}
