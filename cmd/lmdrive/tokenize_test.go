package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTokenizeCommands(t *testing.T) {
	out, _, err := lmdrive(t, "tokenize", "encode", "--json", "Hello, 世界 <|im_end|>")
	if err != nil {
		t.Fatal(err)
	}
	var enc struct {
		IDs   []int32 `json:"ids"`
		Count int     `json:"count"`
	}
	if err := json.Unmarshal([]byte(out), &enc); err != nil || enc.Count != 6 || enc.IDs[len(enc.IDs)-1] != 151645 {
		t.Fatalf("encode: %v %s", err, out)
	}
	out, _, err = lmdrive(t, "tokenize", "decode", "9707", "11", "220", "99489", "220", "151645")
	if err != nil || strings.TrimSpace(out) != "Hello, 世界 <|im_end|>" {
		t.Fatalf("decode: %v %q", err, out)
	}
	if _, _, err := lmdrive(t, "tokenize", "decode", "12", "x"); err == nil {
		t.Fatal("decode accepted a word")
	}
	if _, _, err := lmdrive(t, "tokenize", "encode", "--tokenizer-backend", "nope", "hi"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad backend: %v", err)
	}
}

func TestPromptCommandExactLength(t *testing.T) {
	for _, args := range [][]string{{"--tokens", "300", "--mix", "chinese"}, {"--tokens", "300", "--chat-template"}} {
		out, _, err := lmdrive(t, append([]string{"prompt", "--json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			IDs    []int32 `json:"ids"`
			Tokens int     `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.IDs) != 300 || p.Tokens != 300 {
			t.Fatalf("%v: %v, %d ids", args, err, len(p.IDs))
		}
	}
	if _, _, err := lmdrive(t, "prompt", "--tokens", "10", "--mix", "klingon"); err == nil || !strings.Contains(err.Error(), "klingon") {
		t.Fatalf("bad mix: %v", err)
	}
}

func TestGPUsCommandWithoutDriver(t *testing.T) {
	out, _, err := lmdrive(t, "gpus")
	if err == nil {
		t.Skipf("this machine has an NVIDIA driver:\n%s", out)
	}
	if !strings.Contains(err.Error(), "NVML") {
		t.Fatalf("error does not say what is missing: %v", err)
	}
}
