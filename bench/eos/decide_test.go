package eos

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/driver"
)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureRun is a run that produced n tokens ending in last.
func fixtureRun(requested, n int, last int32, res driver.Result) Run {
	toks := make([]driver.Token, n)
	for i := range toks {
		toks[i] = driver.Token{ID: int32(100 + i), Index: i, TimeNs: int64(i + 1), Logprob: driver.Logprob(math.NaN())}
	}
	if n > 0 {
		toks[n-1].ID = last
	}
	if res.OutputTokens == 0 {
		res.OutputTokens = n
	}
	if res.MaxNewRequested == 0 {
		res.MaxNewRequested = requested
	}
	return Run{Requested: requested, Prompt: []int32{1, 2, 3}, Tokens: toks, Result: res}
}

func qwenAudit(t *testing.T) Audit {
	a, err := RunAudit(AuditInput{ModelDir: fixtures + "/qwen2.5-instruct", PromptTokens: 3, MaxNew: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDecideFixtures(t *testing.T) {
	a := qwenAudit(t)
	cases := []struct {
		name   string
		run    Run
		cause  string
		detail string
	}{
		{"full length", fixtureRun(1000, 1000, 5, driver.Result{Finish: driver.FinishLength}), CauseOK, "every requested token"},
		{"default cap reached the engine", func() Run {
			r := fixtureRun(1000, 513, 11, driver.Result{Finish: driver.FinishLength, MaxNewRequested: 512})
			return r
		}(), CauseDefaultCap, "LMDeploy"},
		{"length lost at the boundary", fixtureRun(1000, 100, 11, driver.Result{Finish: driver.FinishLength, MaxNewRequested: 100}),
			CauseConfigNotApplied, "max_new_tokens=100"},
		{"ignore_eos lost at the boundary", func() Run {
			r := fixtureRun(1000, 500, 151645, driver.Result{Finish: driver.FinishEOS, StopIDs: []int32{151645, 151643}})
			r.IgnoreEOS = true
			return r
		}(), CauseConfigNotApplied, "ignore_eos"},
		{"counting artifact", fixtureRun(1000, 387, 11, driver.Result{Finish: driver.FinishLength, OutputTokens: 388}),
			CauseCountingArtifact, "388"},
		{"session clamp seen only in the limits", func() Run {
			r := fixtureRun(1000, 512, 11, driver.Result{Finish: driver.FinishLength})
			return r
		}(), CauseContextClamp, "kv_session_len"},
		{"engine ends on an id it does not report", fixtureRun(1000, 40, 151643, driver.Result{Finish: driver.FinishEOS, StopIDs: []int32{151645}}),
			CauseHiddenEndID, "not in the stop set"},
		{"prompt contamination", func() Run {
			r := fixtureRun(1000, 40, 11, driver.Result{Finish: driver.FinishLength})
			r.Prompt = []int32{5, 151643, 151643, 6}
			return r
		}(), CausePromptContamination, "EOS or pad"},
		{"nothing matches", fixtureRun(1000, 40, 11, driver.Result{Finish: driver.FinishLength}), CauseUnexplained, "no rule"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			au := a
			if tc.cause == CauseContextClamp {
				au, _ = RunAudit(AuditInput{EngineConfig: fixtures + "/lmdeploy-workspace", PromptTokens: 10240, MaxNew: 1000})
				tc.run.Prompt = make([]int32, 10240)
			}
			v := Decide(tc.run, au, nil)
			if v.Cause != tc.cause || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("verdict %s: %s; want %s mentioning %q\nevidence: %v", v.Cause, v.Detail, tc.cause, tc.detail, v.Evidence)
			}
			if v.Early != (tc.cause != CauseOK) || v.Next == "" {
				t.Fatalf("early %v, next %q", v.Early, v.Next)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	d := Compare("h", "h", []int32{1, 2, 3, 4}, []int32{1, 2, 9})
	if d.Step != 2 || !strings.Contains(d.Summary, "identical for 2 steps") {
		t.Fatalf("%+v", d)
	}
	if d := Compare("h", "x", []int32{1}, []int32{1}); d.SamePrompt || !strings.Contains(d.Summary, "not comparable") {
		t.Fatalf("%+v", d)
	}
	if d := Compare("h", "h", []int32{1, 2}, []int32{1, 2}); d.Step != -1 || !strings.Contains(d.Summary, "identical: 2") {
		t.Fatalf("%+v", d)
	}
}
