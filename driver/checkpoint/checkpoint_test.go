package checkpoint

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// SizeOf, which the free-space check uses, is what Write puts on disk (the
// JSON files are bounded, not counted exactly).
func TestSizeOfIsTheSizeWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	p, _ := LookupPreset("tiny")
	if err := Write(dir, p, Options{Seed: 1, Dtype: "fp16"}); err != nil {
		t.Fatal(err)
	}
	var total int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		st, _ := os.Stat(filepath.Join(dir, e.Name()))
		total += st.Size()
	}
	if got := SizeOf(p, "fp16"); got < total || got > total+jsonBytes {
		t.Fatalf("SizeOf %d, files %d bytes", got, total)
	}
}

// A checkpoint that cannot fit is refused before anything is written, with
// both numbers in the message.
func TestWriteRefusesACheckpointThatDoesNotFit(t *testing.T) {
	disk := t.TempDir()
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v)", err)
	}
	defer unix.Unmount(disk, unix.MNT_DETACH)
	p, _ := LookupPreset("tiny")
	out := filepath.Join(disk, "sub", "m")
	err := Write(out, p, Options{Seed: 1})
	if err == nil || !strings.Contains(err.Error(), "needs "+HumanBytes(SizeOf(p, "fp32"))) ||
		!strings.Contains(err.Error(), "is free in "+filepath.Join(disk, "sub")) || !strings.Contains(err.Error(), "--dtype bf16") {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(disk); len(entries) != 0 {
		t.Fatalf("a refused write left %v", entries)
	}
}

// An interrupted write (or any failure) leaves no folder that looks like a
// checkpoint, and no partial files.
func TestInterruptedWriteLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "m")
	p, _ := LookupPreset("tiny")
	ctx, cancel := context.WithCancelCause(context.Background())
	calls := 0
	err := WriteContext(ctx, out, p, Options{Seed: 1, Progress: func(written, total int64) {
		if calls++; calls == 3 {
			cancel(errors.New("interrupted by SIGINT"))
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "interrupted by SIGINT") || !strings.Contains(err.Error(), "partial files were removed") {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("an interrupted write left %v", entries)
	}
	// The same folder, written in full, appears only once complete.
	var last int64
	if err := WriteContext(context.Background(), out, p, Options{Seed: 1, Progress: func(w, total int64) {
		if _, err := os.Stat(out); err == nil {
			t.Fatal("the folder exists before the checkpoint is complete")
		}
		last = w
	}}); err != nil || last != p.Parameters()*4 {
		t.Fatalf("%v; progress ended at %d", err, last)
	}
}

// An empty folder given as --out is filled (the finished folder replaces
// it); a folder with anything in it is refused untouched.
func TestWriteIntoAnEmptyFolder(t *testing.T) {
	out := t.TempDir()
	p, _ := LookupPreset("tiny")
	if err := Write(out, p, Options{Seed: 1, Dtype: "bf16"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := Write(out, p, Options{Seed: 1}); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("second write: %v", err)
	}
}
