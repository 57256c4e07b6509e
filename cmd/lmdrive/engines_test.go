package main

import (
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

// A long reason goes below the table, once, with every engine it stops; the
// table keeps a one-word status.
func TestEnginesTableGroupsReasons(t *testing.T) {
	noPy := "no Python interpreter: python3 is not on PATH"
	rows := []driver.LibraryReport{
		{Engine: "ref", ABI: "1.1", Backend: "ref-cpu", Library: "/opt/l/liblmdrive_ref.so"},
		{Engine: "trtllm", Error: "not found"},
		{Engine: "hf", ABI: "python worker", Error: noPy},
		{Engine: "vllm", ABI: "python worker", Error: noPy},
		{Engine: "lmdeploy", ABI: "python worker", Backend: "lmdeploy", Error: "lmdeploy is not installed"},
	}
	var b strings.Builder
	if err := writeEnginesTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"ENGINE    STATUS       ABI            BACKEND   LIBRARY",
		"ref       ok           1.1            ref-cpu   /opt/l/liblmdrive_ref.so",
		"trtllm    not found    -              -         -",
		"hf        unavailable  python worker  -         -",
		"vllm      unavailable  python worker  -         -",
		"lmdeploy  unavailable  python worker  lmdeploy  -",
		"hf, vllm: " + noPy,
		"lmdeploy: lmdeploy is not installed",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), strings.Join(want, "\n"))
	}
}
