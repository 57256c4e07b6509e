package checkpoint

import "github.com/lmdrive/lmdrive/driver/splitmix"

// The random-weight generator shared with native/ref (docs/ref-engine.md has
// the specification). Every value is a pure function of (seed, tensor name,
// flat index), so any part of a tensor can be drawn independently.

func fnv1a64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// tensorKey mixes the seed into the tensor's name hash.
func tensorKey(name string, seed uint64) uint64 { return fnv1a64(name) ^ splitmix.Mix(seed) }

// value is element i of a tensor with the given key, scale and offset.
func value(key uint64, i uint64, scale, offset float32) float32 {
	h := splitmix.Mix(key + i)
	u := float32(h>>40) * (1.0 / 16777216.0)
	v := float32(u*2-1) * scale
	if offset != 0 {
		v = offset + v
	}
	return v
}

// Fill writes elements [start, start+len(dst)) of tensor t for seed.
func (t Tensor) Fill(seed uint64, start int, dst []float32) {
	key := tensorKey(t.Name, seed)
	for j := range dst {
		dst[j] = value(key, uint64(start+j), t.Scale, t.Offset)
	}
}
