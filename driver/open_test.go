package driver

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Open reaches the same engine in a runner child and in this process.
func TestOpenRunnerAndInProcess(t *testing.T) {
	lib := buildFakeEngine(t)
	runner, env := testRunner()
	for _, inProcess := range []bool{false, true} {
		eng, err := Open(context.Background(), OpenOptions{Engine: "fake", Search: Search{Flag: lib}, Config: json.RawMessage(`{"mode":"ok"}`),
			InProcess: inProcess, Runner: runner, Env: env, LoadTimeout: time.Minute})
		if err != nil {
			t.Fatalf("in-process %v: %v", inProcess, err)
		}
		if got := eng.Info().Library; got != lib {
			t.Errorf("in-process %v: library %q, want %q", inProcess, got, lib)
		}
		if _, isRemote := eng.(*RemoteEngine); isRemote == inProcess {
			t.Errorf("in-process %v: engine is %T", inProcess, eng)
		}
		res, err := eng.Generate(context.Background(), Request{Prompt: []int32{1, 2}, MaxNewTokens: 3}, nil)
		if err != nil || res.OutputTokens != 3 {
			t.Errorf("in-process %v: %+v %v", inProcess, res, err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// The runner's timeouts apply through Open, and a hang names the flag to raise.
func TestOpenTimeoutNamesItsFlag(t *testing.T) {
	lib := buildFakeEngine(t)
	runner, env := testRunner()
	_, err := Open(context.Background(), OpenOptions{Engine: "fake", Search: Search{Flag: lib}, Config: json.RawMessage(`{"mode":"hang_load"}`),
		Runner: runner, Env: env, LoadTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "hung during load") || !strings.Contains(err.Error(), "raise --load-timeout") {
		t.Fatalf("hang: %v", err)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	_, err := Open(context.Background(), OpenOptions{Engine: "fake", StallTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "--stall-timeout -1s is negative") {
		t.Fatalf("negative timeout: %v", err)
	}
	_, err = Open(context.Background(), OpenOptions{Engine: "nope", Search: Search{Flag: filepath.Join(t.TempDir(), "x")}})
	if err == nil || !strings.Contains(err.Error(), "liblmdrive_nope.so") {
		t.Fatalf("missing library: %v", err)
	}
}

func TestEngineSettingsPrecision(t *testing.T) {
	for precision, want := range map[string]string{
		"fp32": `"dtype":"fp32"`, "bf16": `"dtype":"bf16"`, "int8": `"weights":"int8"`, "fp8": `"weights":"fp8"`,
	} {
		cfg, err := EngineSettings{Engine: "ref", Model: "random:tiny", TP: 1, Precision: precision}.Config()
		if err != nil || !strings.Contains(string(cfg), want) {
			t.Errorf("--precision %s: %s %v, want %s", precision, cfg, err, want)
		}
	}
	plain, _ := EngineSettings{Engine: "ref", Model: "random:tiny", TP: 1}.Config()
	if strings.Contains(string(plain), "dtype") || strings.Contains(string(plain), "weights") {
		t.Errorf("no --precision sets neither dtype nor weights: %s", plain)
	}
	_, err := EngineSettings{Engine: "ref", TP: 1, Precision: "int4"}.Config()
	if err == nil || !strings.Contains(err.Error(), "fp32, fp16, bf16, int8, fp8") {
		t.Errorf("bad precision: %v", err)
	}
}

func TestEngineSettingsConfig(t *testing.T) {
	cfg, err := EngineSettings{Engine: "ref", Model: "random:tiny", Seed: 3, Device: "cuda", TP: 2, Threads: 4,
		Extra: `{"max_seq_len": 64, "device": "cpu"}`}.Config()
	var got map[string]any
	if err != nil || json.Unmarshal(cfg, &got) != nil {
		t.Fatalf("%s %v", cfg, err)
	}
	want := map[string]any{"model": "random:tiny", "seed": 3.0, "device": "cpu", "tp": 2.0, "threads": 4.0, "max_seq_len": 64.0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (extra keys win over flags)", k, got[k], v)
		}
	}
	other, _ := EngineSettings{Engine: "trtllm", Model: "/m", TP: 1, Seed: 9}.Config()
	if string(other) != `{"model":"/m","tp":1}` {
		t.Errorf("other engines get model and tp only: %s", other)
	}
	for _, bad := range []EngineSettings{{TP: 0}, {TP: 1, Threads: -1}, {TP: 1, Extra: "[1]"}, {TP: 1, Extra: "null"},
		{Engine: "ref", TP: 1, Precision: "int4"}, {Engine: "trtllm", TP: 1, Precision: "int8"}} {
		if _, err := bad.Config(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
