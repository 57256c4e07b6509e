package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
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

// TestGPUsCommand checks whichever path this host has: with the NVIDIA
// driver, every GPU NVML counts is described (with a name and UUID); without
// it, the command fails saying that NVML is missing. Neither path skips.
func TestGPUsCommand(t *testing.T) {
	tel, nvmlErr := nvml.Open()
	out, _, err := lmdrive(t, "gpus", "--json")
	if nvmlErr != nil {
		if err == nil || !strings.Contains(err.Error(), "NVML") {
			t.Fatalf("without NVML (%v) the command answered %v:\n%s", nvmlErr, err, out)
		}
		return
	}
	n := tel.DeviceCount()
	tel.Close()
	if n == 0 {
		if err == nil || !strings.Contains(err.Error(), "NVML reports no GPUs") {
			t.Fatalf("a driver without GPUs: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("NVML sees %d GPUs, the command failed: %v", n, err)
	}
	var inv cuda.Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil || len(inv.Devices) != n || !inv.System.DriverVersion.Valid {
		t.Fatalf("%v: %d devices of %d, driver %s\n%s", err, len(inv.Devices), n, inv.System.DriverVersion, out)
	}
	for _, d := range inv.Devices {
		if d.Name == "" || !strings.HasPrefix(d.UUID, "GPU-") {
			t.Errorf("device %d: name %q, UUID %q", d.Index, d.Name, d.UUID)
		}
	}
}
