package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

// TestReferenceEngine runs the suite against the reference engine.
func TestReferenceEngine(t *testing.T) {
	path, err := driver.DefaultSearch("").Find("ref", driver.FileExists)
	if err != nil {
		path, err = (driver.Search{WorkDir: filepath.Join("..", "..")}).Find("ref", driver.FileExists)
	}
	if err != nil {
		if os.Getenv("LMDRIVE_REQUIRE_NATIVE") == "1" {
			t.Fatalf("reference engine library missing: %v", err)
		}
		t.Skip("reference engine library not built (make native)")
	}
	Run(t, Target{Engine: "ref", Library: path, Config: map[string]any{"model": "random:tiny-untied", "seed": 2},
		Prompt: []int32{9707, 11, 1879, 0, 220, 101, 3923, 5023}, EOSKey: "eos_ids", MaxSeqKey: "max_seq_len", BatchInvariant: true})
}

// TestOtherEngines runs the suite against shims named in
// LMDRIVE_CONFORMANCE: a JSON list of Target objects, for example
//
//	[{"Engine":"trtllm","Library":"/opt/lmdrive/lib/liblmdrive_trtllm.so",
//	  "Config":{"model":"/engines/qwen2.5-0.5b","eos_ids":[151645,151643]},
//	  "Prompt":[9707,11,1879]}]
func TestOtherEngines(t *testing.T) {
	spec := os.Getenv("LMDRIVE_CONFORMANCE")
	if strings.TrimSpace(spec) == "" {
		t.Skip("set LMDRIVE_CONFORMANCE to a JSON list of targets to check SDK-built shims")
	}
	var targets []Target
	if err := json.Unmarshal([]byte(spec), &targets); err != nil {
		t.Fatalf("LMDRIVE_CONFORMANCE is not a JSON list of targets: %v", err)
	}
	for _, tg := range targets {
		t.Run(tg.Engine, func(t *testing.T) { Run(t, tg) })
	}
}
