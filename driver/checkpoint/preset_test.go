package checkpoint

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The reference engine's preset table (random:<preset>) is generated from
// this package's table, so the two cannot drift. After changing a preset,
// regenerate it with
//
//	go test ./driver/checkpoint -run TestNativePresetTable -update
var updateNative = flag.Bool("update", false, "rewrite native/ref/presets_table.h from the Go preset table")

const nativePresetTable = "../../native/ref/presets_table.h"

// TestNativePresetTable fails when the checked-in C++ table is not what the
// Go table renders to: every field of every preset, and the EOS set.
func TestNativePresetTable(t *testing.T) {
	want := renderNativePresetTable()
	if *updateNative {
		if err := os.WriteFile(nativePresetTable, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(nativePresetTable)
	if err != nil {
		t.Fatalf("read the generated table: %v", err)
	}
	if string(got) != want {
		t.Fatalf("native/ref/presets_table.h is stale; regenerate it with\n  go test ./driver/checkpoint -run TestNativePresetTable -update\nfirst difference: %s",
			firstDifference(string(got), want))
	}
}

// TestNativePresetTableRows pins the rendering of one row, so a change to
// the generator itself is seen here and not only as a stale file.
func TestNativePresetTableRows(t *testing.T) {
	table := renderNativePresetTable()
	for _, row := range []string{
		`{"tiny", 151936, 64, 176, 2, 4, 2, true, 32768, 1e+06, 1e-06f},`,
		`{"tiny-untied", 151936, 96, 256, 3, 6, 2, false, 4096, 10000.0, 1e-05f},`,
		`kPresetEosIds[] = {151643, 151645};`,
	} {
		if !strings.Contains(table, row) {
			t.Errorf("rendered table lacks %s", row)
		}
	}
	if n := strings.Count(table, "\n    {\""); n != len(presets) {
		t.Errorf("%d rows for %d presets", n, len(presets))
	}
}

// renderNativePresetTable writes the Go table as a C++ header.
func renderNativePresetTable() string {
	var b strings.Builder
	b.WriteString(`// Code generated from driver/checkpoint/preset.go by
//   go test ./driver/checkpoint -run TestNativePresetTable -update
// DO NOT EDIT: the Go table is the one source of the model presets, and that
// test fails while this file differs from it.
#pragma once

#include <cstdint>

#include "presets.h"

namespace lmdref {

// name, vocab, hidden, intermediate, layers, heads, kv_heads, tied, max_pos, rope_theta, rms_eps
inline constexpr Preset kPresets[] = {
`)
	for _, p := range presets {
		fmt.Fprintf(&b, "    {%q, %d, %d, %d, %d, %d, %d, %t, %d, %s, %sf},\n",
			p.Name, p.Vocab, p.Hidden, p.Intermediate, p.Layers, p.Heads, p.KVHeads, p.Tied, p.MaxPositions,
			cFloat(p.RopeTheta), cFloat(p.RMSNormEps))
	}
	eos := slices.Clone(EOSIDs)
	slices.Sort(eos)
	ids := make([]string, len(eos))
	for i, id := range eos {
		ids[i] = strconv.Itoa(id)
	}
	fmt.Fprintf(&b, `};

// The EOS set of random presets (Qwen2.5's <|endoftext|> and <|im_end|>), ascending.
inline constexpr int32_t kPresetEosIds[] = {%s};

}  // namespace lmdref
`, strings.Join(ids, ", "))
	return b.String()
}

// cFloat spells v as a C++ floating literal: shortest round-trip digits,
// with a fraction or an exponent so that an 'f' suffix stays valid.
func cFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "none"
}
