package tokenize

import (
	"slices"
	"testing"
)

func TestParseIDs(t *testing.T) {
	good := map[string][]int32{
		"[1, 2, 3]":    {1, 2, 3},
		"1 2\n3":       {1, 2, 3},
		" 1,2 , 3\r\n": {1, 2, 3},
		"":             {},
		"[]":           {},
		"-4":           {-4},
	}
	for in, want := range good {
		got, err := ParseIDs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseIDs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1 two", "[1, 2", "99999999999", "1.5", "[\"a\"]"} {
		if _, err := ParseIDs(in); err == nil {
			t.Errorf("ParseIDs(%q) succeeded", in)
		}
	}
}
