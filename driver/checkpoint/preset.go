// Package checkpoint writes deterministic random Qwen2 checkpoints in
// Hugging Face format (config.json, generation_config.json,
// model.safetensors). The weights are bit-identical to what the reference
// engine generates itself for `random:<preset>` with the same seed, so a
// written checkpoint and the random preset can check each other.
package checkpoint

import (
	"fmt"
	"math"
	"strings"
)

// Preset is the shape of a Qwen2 model.
type Preset struct {
	Name         string
	Vocab        int
	Hidden       int
	Intermediate int
	Layers       int
	Heads        int
	KVHeads      int
	Tied         bool
	MaxPositions int
	RopeTheta    float64
	RMSNormEps   float64
}

// HeadDim is hidden size over attention heads, as Qwen2 defines it.
func (p Preset) HeadDim() int { return p.Hidden / p.Heads }

// EOSIDs is the EOS set of the Qwen2.5 instruct models: <|im_end|>, <|endoftext|>.
var EOSIDs = []int{151645, 151643}

// The shapes of the Qwen2.5 family (from each model's config.json) and two
// tiny test shapes. The one source of the presets: native/ref/presets_table.h
// is generated from this table and EOSIDs (preset_test.go).
var presets = []Preset{
	{"tiny", 151936, 64, 176, 2, 4, 2, true, 32768, 1e6, 1e-6},
	{"tiny-untied", 151936, 96, 256, 3, 6, 2, false, 4096, 10000, 1e-5},
	{"qwen2.5-0.5b", 151936, 896, 4864, 24, 14, 2, true, 32768, 1e6, 1e-6},
	{"qwen2.5-1.5b", 151936, 1536, 8960, 28, 12, 2, true, 32768, 1e6, 1e-6},
	{"qwen2.5-3b", 151936, 2048, 11008, 36, 16, 2, true, 32768, 1e6, 1e-6},
	{"qwen2.5-7b", 152064, 3584, 18944, 28, 28, 4, false, 32768, 1e6, 1e-6},
	{"qwen2.5-14b", 152064, 5120, 13824, 48, 40, 8, false, 32768, 1e6, 1e-5},
	{"qwen2.5-32b", 152064, 5120, 27648, 64, 40, 8, false, 32768, 1e6, 1e-5},
	{"qwen2.5-72b", 152064, 8192, 29568, 80, 64, 8, false, 32768, 1e6, 1e-5},
}

// Presets lists the preset names in table order.
func Presets() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// LookupPreset finds a preset by name.
func LookupPreset(name string) (Preset, error) {
	for _, p := range presets {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q; choose one of: %s", name, strings.Join(Presets(), ", "))
}

// Tensor is one weight tensor: its Hugging Face name, shape and how its
// random values are drawn.
type Tensor struct {
	Name  string
	Shape []int
	// Scale of the uniform draw; values are Offset + u·Scale, u in [-1, 1).
	Scale  float32
	Offset float32
}

// Elements is the number of values in the tensor.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Tensors lists the model's tensors in file order.
func (p Preset) Tensors() []Tensor {
	hd := p.HeadDim()
	linear := func(name string, out, in int) Tensor {
		return Tensor{Name: name, Shape: []int{out, in}, Scale: float32(1 / math.Sqrt(float64(in)))}
	}
	norm := func(name string) Tensor { return Tensor{Name: name, Shape: []int{p.Hidden}, Scale: 0.1, Offset: 1} }
	bias := func(name string, n int) Tensor { return Tensor{Name: name, Shape: []int{n}, Scale: 0.1} }

	ts := []Tensor{{Name: "model.embed_tokens.weight", Shape: []int{p.Vocab, p.Hidden}, Scale: 1}}
	for i := range p.Layers {
		l := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			norm(l+"input_layernorm.weight"),
			linear(l+"self_attn.q_proj.weight", p.Heads*hd, p.Hidden),
			bias(l+"self_attn.q_proj.bias", p.Heads*hd),
			linear(l+"self_attn.k_proj.weight", p.KVHeads*hd, p.Hidden),
			bias(l+"self_attn.k_proj.bias", p.KVHeads*hd),
			linear(l+"self_attn.v_proj.weight", p.KVHeads*hd, p.Hidden),
			bias(l+"self_attn.v_proj.bias", p.KVHeads*hd),
			linear(l+"self_attn.o_proj.weight", p.Hidden, p.Heads*hd),
			norm(l+"post_attention_layernorm.weight"),
			linear(l+"mlp.gate_proj.weight", p.Intermediate, p.Hidden),
			linear(l+"mlp.up_proj.weight", p.Intermediate, p.Hidden),
			linear(l+"mlp.down_proj.weight", p.Hidden, p.Intermediate),
		)
	}
	ts = append(ts, norm("model.norm.weight"))
	if !p.Tied {
		ts = append(ts, Tensor{Name: "lm_head.weight", Shape: []int{p.Vocab, p.Hidden}, Scale: 1})
	}
	return ts
}

// Parameters counts the model's weights.
func (p Preset) Parameters() int64 {
	var n int64
	for _, t := range p.Tensors() {
		n += int64(t.Elements())
	}
	return n
}
