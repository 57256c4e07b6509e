package tokjson

import (
	"encoding/json"
	"strings"
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

func TestCheckSyntax(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }
	cases := []struct{ in, want string }{
		{`{"model": {"vocab": {"a": 0}}}`, ""},
		{`{"s": "braces {[ and \"quotes\" in a string"}`, ""},
		{deep(MaxDepth), ""},
		{deep(MaxDepth + 1), "nests more than 100 levels"},
		{`{"model": {"vocab": {"a": 0}`, "not valid JSON (cut short?)"},
		{`[1, 2]`, "not a JSON object"},
		{"  \n", "empty"},
	}
	for _, c := range cases {
		err := CheckSyntax([]byte(c.in))
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%.40q: %v; want %q", c.in, err, c.want)
		}
	}
}
