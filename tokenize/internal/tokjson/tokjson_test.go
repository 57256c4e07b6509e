package tokjson

import (
	"encoding/json"
	"testing"
)

func TestMergeForms(t *testing.T) {
	for _, merges := range []string{`["a b", "ab c"]`, `[["a", "b"], ["ab", "c"]]`, `["#version: 0.2", "a b", "ab c"]`} {
		m := Model{Type: "BPE", Merges: json.RawMessage(merges)}
		got, err := m.MergeList()
		if err != nil {
			t.Fatalf("%s: %v", merges, err)
		}
		if len(got) != 2 || got[0] != (Merge{"a", "b"}) || got[1] != (Merge{"ab", "c"}) {
			t.Errorf("%s: got %v", merges, got)
		}
	}
	for _, bad := range []string{`["a b c"]`, `["ab"]`, `[["a"]]`, `[1]`, `{}`} {
		m := Model{Type: "BPE", Merges: json.RawMessage(bad)}
		if _, err := m.MergeList(); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestParse(t *testing.T) {
	f, err := Parse([]byte(`{"added_tokens": [{"id": 2, "content": "<s>", "special": true}],
		"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b", -2.0]]}, "decoder": {"type": "ByteLevel"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tokens, present, err := f.Model.TokensByID()
	if err != nil || len(tokens) != 2 || tokens[1] != "b" || !present[0] {
		t.Errorf("TokensByID = %v, %v, %v", tokens, present, err)
	}
	if !f.HasByteLevelDecoder() {
		t.Error("ByteLevel decoder not seen")
	}
	for _, bad := range []string{"", "  ", "[]", "{", `{"added_tokens": []}`,
		`{"model": {"type": "BPE", "vocab": {}}, "added_tokens": [{"id": -1, "content": "x"}]}`,
		`{"model": {"type": "BPE", "vocab": {}}, "added_tokens": [{"id": 1, "content": ""}]}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
