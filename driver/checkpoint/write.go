package checkpoint

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Dtypes a checkpoint can be written in, by safetensors name.
var dtypes = map[string]struct {
	st   string
	size int
}{
	"fp32": {"F32", 4}, "fp16": {"F16", 2}, "bf16": {"BF16", 2},
}

// Options for Write.
type Options struct {
	Seed  uint64
	Dtype string // fp32 (default), fp16 or bf16
	// Progress, if set, is called as the weights are written, with the
	// bytes written so far and the total.
	Progress func(written, total int64)
}

// Write writes config.json, generation_config.json and model.safetensors for
// preset p into dir, which must be empty or absent (WriteContext without a
// way to stop it).
func Write(dir string, p Preset, o Options) error {
	return WriteContext(context.Background(), dir, p, o)
}

// WriteContext writes the checkpoint of preset p into dir, which must be
// empty or absent. It first checks that the files fit in the free space of
// dir's file system, then writes them into a hidden folder next to dir and
// renames it to dir only once every file is complete and synced: a failure
// or a cancelled ctx removes the partial folder, so a folder named dir is
// always a whole checkpoint.
func WriteContext(ctx context.Context, dir string, p Preset, o Options) (err error) {
	if o.Dtype == "" {
		o.Dtype = "fp32"
	}
	dt, ok := dtypes[o.Dtype]
	if !ok {
		return fmt.Errorf("write checkpoint: dtype %q is not one of fp32, fp16, bf16", o.Dtype)
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return fmt.Errorf("write checkpoint: %s is a file; choose a new folder", dir)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("write checkpoint: %s is not empty; choose a new folder", dir)
	}
	header, err := safetensorsHeader(p, o.Seed, dt.st, dt.size)
	if err != nil {
		return err
	}
	need := SizeOf(p, o.Dtype)
	parent := filepath.Dir(filepath.Clean(dir))
	if err := checkFreeSpace(parent, need, p.Name, o.Dtype); err != nil {
		return err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(dir))+".partial-")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := writeJSON(filepath.Join(tmp, "config.json"), hfConfig(p, o.Dtype)); err != nil {
		return err
	}
	gen := map[string]any{"bos_token_id": 151643, "eos_token_id": EOSIDs, "pad_token_id": 151643, "do_sample": false}
	if err := writeJSON(filepath.Join(tmp, "generation_config.json"), gen); err != nil {
		return err
	}
	st := filepath.Join(tmp, "model.safetensors")
	if err := writeSafetensors(ctx, st, p, o.Seed, header, dt.st, dt.size, o.Progress); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("write checkpoint %s: %w (the partial files were removed)", dir, context.Cause(ctx))
		}
		return fmt.Errorf("%w (the partial files were removed)", err)
	}
	// rename(2) itself, which replaces an empty folder at dir (os.Rename
	// refuses any existing folder).
	if err := unix.Rename(tmp, dir); err != nil {
		return fmt.Errorf("write checkpoint: move the finished files into place at %s: %w", dir, err)
	}
	syncDir(parent)
	return nil
}

// SizeOf is the number of bytes a checkpoint of preset p in dtype takes on
// disk: the weights, the safetensors header and the two JSON files.
func SizeOf(p Preset, dtype string) int64 {
	dt, ok := dtypes[dtype]
	if !ok {
		dt = dtypes["fp32"]
	}
	header, _ := safetensorsHeader(p, 0, dt.st, dt.size)
	return 8 + int64(len(header)) + p.Parameters()*int64(dt.size) + jsonBytes
}

// jsonBytes bounds config.json and generation_config.json together.
const jsonBytes = 4096

// FreeSpace is the space an unprivileged writer may still use on the file
// system holding path, or its nearest existing ancestor.
func FreeSpace(path string) (int64, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(path, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		parent := filepath.Dir(path)
		if !errors.Is(err, unix.ENOENT) || parent == path {
			return 0, err
		}
		path = parent
	}
}

// checkFreeSpace refuses to start a checkpoint that cannot fit.
func checkFreeSpace(parent string, need int64, preset, dtype string) error {
	free, err := FreeSpace(parent)
	if err != nil {
		return fmt.Errorf("write checkpoint: free space of %s: %w", parent, err)
	}
	if need <= free {
		return nil
	}
	hint := "choose a smaller preset or a folder on a bigger disk"
	if dtype == "fp32" {
		hint = "choose --dtype bf16 (half the size), a smaller preset, or a folder on a bigger disk"
	}
	return fmt.Errorf("write checkpoint: preset %s in %s needs %s but only %s is free in %s; %s",
		preset, dtype, HumanBytes(need), HumanBytes(free), parent, hint)
}

// HumanBytes writes n in decimal units (GB = 10^9 bytes, as disks are sold).
func HumanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	v, i := float64(n), 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// hfConfig is config.json as transformers' Qwen2Config reads it.
func hfConfig(p Preset, dtype string) map[string]any {
	torchDtype := map[string]string{"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[dtype]
	return map[string]any{
		"architectures":           []string{"Qwen2ForCausalLM"},
		"model_type":              "qwen2",
		"vocab_size":              p.Vocab,
		"hidden_size":             p.Hidden,
		"intermediate_size":       p.Intermediate,
		"num_hidden_layers":       p.Layers,
		"num_attention_heads":     p.Heads,
		"num_key_value_heads":     p.KVHeads,
		"head_dim":                p.HeadDim(),
		"hidden_act":              "silu",
		"max_position_embeddings": p.MaxPositions,
		"rms_norm_eps":            p.RMSNormEps,
		"rope_theta":              p.RopeTheta,
		"rope_parameters":         map[string]any{"rope_type": "default", "rope_theta": p.RopeTheta},
		"tie_word_embeddings":     p.Tied,
		"attention_dropout":       0.0,
		"use_sliding_window":      false,
		"sliding_window":          nil,
		"max_window_layers":       p.Layers,
		"bos_token_id":            151643,
		"eos_token_id":            151645,
		"torch_dtype":             torchDtype,
		"dtype":                   torchDtype,
		"use_cache":               true,
		"lmdrive_preset":          p.Name,
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

type stEntry struct {
	Dtype   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// safetensorsHeader is the JSON header: an object of name → entry
// (json.Marshal sorts map keys), padded with spaces to a multiple of 8 bytes.
func safetensorsHeader(p Preset, seed uint64, stDtype string, size int) ([]byte, error) {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt", "lmdrive_preset": p.Name, "lmdrive_seed": fmt.Sprint(seed)}}
	off := 0
	for _, t := range p.Tensors() {
		n := t.Elements() * size
		header[t.Name] = stEntry{Dtype: stDtype, Shape: t.Shape, Offsets: [2]int{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("write checkpoint: safetensors header: %w", err)
	}
	if pad := (8 - len(hb)%8) % 8; pad > 0 {
		hb = append(hb, []byte(strings.Repeat(" ", pad))...)
	}
	return hb, nil
}

func writeSafetensors(ctx context.Context, path string, p Preset, seed uint64, hb []byte, stDtype string, size int,
	progress func(written, total int64)) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", path, cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 4<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hb)))
	w.Write(lenBuf[:])
	w.Write(hb)
	total := p.Parameters() * int64(size)
	var written int64
	const chunk = 1 << 16
	vals := make([]float32, chunk)
	out := make([]byte, chunk*size)
	for _, t := range p.Tensors() {
		n := t.Elements()
		for start := 0; start < n; start += chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := min(chunk, n-start)
			t.Fill(seed, start, vals[:k])
			encode(out[:k*size], vals[:k], stDtype)
			if _, err := w.Write(out[:k*size]); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			written += int64(k * size)
			if progress != nil {
				progress(written, total)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func encode(dst []byte, vals []float32, stDtype string) {
	switch stDtype {
	case "F32":
		for i, v := range vals {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case "BF16":
		for i, v := range vals {
			binary.LittleEndian.PutUint16(dst[2*i:], toBF16(v))
		}
	case "F16":
		for i, v := range vals {
			binary.LittleEndian.PutUint16(dst[2*i:], toF16(v))
		}
	}
}

// toBF16 rounds to nearest even (values here are finite and small).
func toBF16(v float32) uint16 {
	b := math.Float32bits(v)
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// toF16 converts a float32 in the normal half range to IEEE half, rounding
// to nearest even; values here lie within ±2 so no overflow handling is needed
// beyond subnormals, which flush through the general path.
func toF16(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xFF) - 127 + 15
	mant := b & 0x7FFFFF
	switch {
	case exp >= 31:
		return sign | 0x7C00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		if rem := mant & (1<<shift - 1); rem > half || rem == half && r&1 == 1 {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | mant>>13
	if rem := mant & 0x1FFF; rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++
	}
	return sign | uint16(r)
}
