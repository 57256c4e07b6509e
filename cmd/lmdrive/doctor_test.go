package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver/doctor"
)

func TestDoctorReadyForRef(t *testing.T) {
	lib := refLibDir(t)
	out, _, err := lmdrive(t, "doctor", "--json", "--lib-path", lib, "--min-free-disk", "1MiB", "--min-free-memory", "1MiB")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != doctor.Schema || !r.Ready || len(r.Missing) != 0 || strings.Join(r.Engines, ",") != "ref" {
		t.Fatalf("report: %+v", r)
	}
	byID := map[string]doctor.Check{}
	for _, c := range r.Checks {
		byID[c.ID] = c
	}
	if ref := byID["engine.ref"]; ref.Status != doctor.StatusOK || ref.ABI != "1.1" || !ref.Required {
		t.Fatalf("engine.ref: %+v", ref)
	}
	if tm := byID["engine.turbomind"]; tm.Required || (tm.Status == doctor.StatusMissing && !strings.Contains(tm.Fix, "docs/engines.md")) {
		t.Fatalf("engine.turbomind: %+v", tm)
	}
}

func TestDoctorExitStatus(t *testing.T) {
	lib := refLibDir(t)
	// No host has the TensorRT-LLM shim here: missing, exit status 2, the
	// text names what is missing and how to fix it.
	out, _, err := lmdrive(t, "doctor", "--engines", "ref,trtllm", "--lib-path", lib, "--min-free-disk", "1MiB", "--min-free-memory", "1MiB")
	if err == nil || exitCode(err) != exitNotReady || !strings.Contains(err.Error(), "engine.trtllm") {
		t.Fatalf("err %v (exit %d)\n%s", err, exitCode(err), out)
	}
	for _, want := range []string{"MISSING  engine.trtllm", "fix: built only where its SDK is installed", "NOT ready for ref, trtllm: missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// A bad flag is the doctor's own failure: exit status 1.
	if _, _, err := lmdrive(t, "doctor", "--engines", "reff"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), `unknown engine "reff"`) {
		t.Fatalf("bad engine: %v", err)
	}
	if _, _, err := lmdrive(t, "doctor", "--min-free-disk", "lots"); err == nil || !strings.Contains(err.Error(), "--min-free-disk") {
		t.Fatalf("bad size: %v", err)
	}
}
