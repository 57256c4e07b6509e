package checkpoint

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
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
}

// Write writes config.json, generation_config.json and model.safetensors for
// preset p into dir, which must be empty or absent.
func Write(dir string, p Preset, o Options) error {
	if o.Dtype == "" {
		o.Dtype = "fp32"
	}
	dt, ok := dtypes[o.Dtype]
	if !ok {
		return fmt.Errorf("write checkpoint: dtype %q is not one of fp32, fp16, bf16", o.Dtype)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("write checkpoint: %s is not empty; choose a new folder", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), hfConfig(p, o.Dtype)); err != nil {
		return err
	}
	gen := map[string]any{"bos_token_id": 151643, "eos_token_id": EOSIDs, "pad_token_id": 151643, "do_sample": false}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), gen); err != nil {
		return err
	}
	return writeSafetensors(filepath.Join(dir, "model.safetensors"), p, o.Seed, dt.st, dt.size)
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
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

type stEntry struct {
	Dtype   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

func writeSafetensors(path string, p Preset, seed uint64, stDtype string, size int) (err error) {
	tensors := p.Tensors()
	// Header: a JSON object of name → entry (json.Marshal sorts map keys),
	// padded with spaces to a multiple of 8 bytes.
	header := map[string]any{"__metadata__": map[string]string{"format": "pt", "lmdrive_preset": p.Name, "lmdrive_seed": fmt.Sprint(seed)}}
	off := 0
	for _, t := range tensors {
		n := t.Elements() * size
		header[t.Name] = stEntry{Dtype: stDtype, Shape: t.Shape, Offsets: [2]int{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if pad := (8 - len(hb)%8) % 8; pad > 0 {
		hb = append(hb, []byte(strings.Repeat(" ", pad))...)
	}

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
	const chunk = 1 << 16
	vals := make([]float32, chunk)
	out := make([]byte, chunk*size)
	for _, t := range tensors {
		total := t.Elements()
		for start := 0; start < total; start += chunk {
			n := min(chunk, total-start)
			t.Fill(seed, start, vals[:n])
			encode(out[:n*size], vals[:n], stDtype)
			if _, err := w.Write(out[:n*size]); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
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
