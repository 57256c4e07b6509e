package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/driver/pyenvtest"
	"golang.org/x/sys/unix"
)

func faultWorker(t *testing.T, py string, config any, timeouts time.Duration) (Engine, error) {
	t.Helper()
	cfg, _ := json.Marshal(config)
	script, _ := filepath.Abs(filepath.Join("pyworker", "tests", "fault_worker.py"))
	return StartPython(context.Background(), PythonOptions{Interpreter: py, WorkerDir: "pyworker", Script: script,
		Engine: "fault", Config: cfg,
		Runner: RunnerOptions{LoadTimeout: timeouts, PrefillTimeout: timeouts, StallTimeout: timeouts}})
}

func monotonicNs(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano()
}

func TestPythonWorkerSpeaksTheRunnerProtocol(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	eng, err := faultWorker(t, py, map[string]any{"mode": "print_stdout", "bundle": 4}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	info := eng.Info()
	if info.Backend != "fault" || info.VocabSize != 1000 || info.LoadNs <= 0 || info.Versions["python"] == "" || len(info.Config) == 0 {
		t.Fatalf("info %+v", info)
	}
	for round := range 2 {
		var toks []Token
		req := Request{Prompt: []int32{5}, MaxNewTokens: 300, IgnoreEOS: true, WatchIDs: []int32{7, 9}, WantLogprobs: true}
		res, err := eng.Generate(context.Background(), req, func(ts []Token) { toks = append(toks, ts...) })
		if err != nil {
			t.Fatal(err)
		}
		if res.Finish != FinishLength || len(toks) != 300 || res.OutputTokens != 300 {
			t.Fatalf("round %d: %+v, %d tokens", round, res, len(toks))
		}
		for i, tok := range toks {
			if tok.Index != i || tok.ID != int32(i%1000) || tok.Bundle != 4 || tok.Logprob != -0.5 ||
				len(tok.Watched) != 2 || tok.Watched[1] != -10 {
				t.Fatalf("token %d: %+v", i, tok)
			}
			if i%4 != 0 && tok.TimeNs != toks[i-1].TimeNs {
				t.Fatalf("tokens of one bundle carry different times: %+v after %+v", tok, toks[i-1])
			}
		}
	}
	// The library's stdout landed in the log, not in the protocol.
	if !strings.Contains(eng.(*pythonEngine).log.Tail(10), "must not reach the protocol") {
		t.Errorf("stdout noise not in the log: %q", eng.(*pythonEngine).log.Tail(10))
	}
}

// The worker stamps tokens with CLOCK_MONOTONIC, the clock of the native
// engines and of Go's own reading here: every time it reports lies between
// two readings taken by this process around the request.
func TestPythonWorkerClockIsCLOCKMONOTONIC(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	eng, err := faultWorker(t, py, map[string]any{"step_us": 200}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var toks []Token
	before := monotonicNs(t)
	res, err := eng.Generate(context.Background(), Request{Prompt: []int32{1}, MaxNewTokens: 50, IgnoreEOS: true}, func(ts []Token) {
		now := monotonicNs(t)
		for _, tok := range ts {
			if tok.TimeNs > now {
				t.Errorf("token %d stamped %d ns after it was received", tok.Index, tok.TimeNs-now)
			}
		}
		toks = append(toks, ts...)
	})
	after := monotonicNs(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 50 {
		t.Fatalf("%d tokens, %+v", len(toks), res)
	}
	if res.SubmitNs < before || res.DoneNs > after || res.SubmitNs > res.FirstNs || res.FirstNs != toks[0].TimeNs ||
		res.LastNs != toks[len(toks)-1].TimeNs {
		t.Fatalf("times outside [%d, %d]: %+v", before, after, res)
	}
	// A 200 µs step: the worker's gaps are real time on the shared clock.
	span := toks[len(toks)-1].TimeNs - toks[0].TimeNs
	if span < 49*200_000 || span > after-before {
		t.Fatalf("49 steps of 200 µs took %d ns on the worker's clock (request took %d ns)", span, after-before)
	}
}

func TestPythonWorkerFailures(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	cases := []struct{ mode, phase, kind, has string }{
		{"crash_load", PhaseLoad, "crashed", "about to crash in load"},
		{"hang_load", PhaseLoad, "hung", "hanging in load"},
		{"fail_load", PhaseLoad, "failed", "fault: load failed on purpose"},
		{"bug_load", PhaseLoad, "failed", "KeyError: 'no such thing' (traceback in the engine log)"},
		{"crash_prefill", PhasePrefill, "crashed", "about to crash in prefill"},
		{"hang_prefill", PhasePrefill, "hung", "hanging in prefill"},
		{"crash_decode", PhaseDecode, "crashed", "about to crash in decode"},
		{"hang_decode", PhaseDecode, "hung", "hanging in decode"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			eng, err := faultWorker(t, py, map[string]any{"mode": tc.mode}, 3*time.Second)
			if err == nil {
				defer eng.Close()
				_, err = eng.Generate(context.Background(), Request{Prompt: []int32{5}, MaxNewTokens: 3000}, nil)
			}
			var f *EngineFailure
			if !errors.As(err, &f) {
				t.Fatalf("error %v (%T); want an EngineFailure", err, err)
			}
			if f.Phase != tc.phase || f.Kind != tc.kind || f.Engine != "fault" {
				t.Fatalf("failure %q: phase %s kind %s; want %s %s", err, f.Phase, f.Kind, tc.phase, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.has) {
				t.Fatalf("message %q lacks %q", err, tc.has)
			}
			if tc.kind == "crashed" && !strings.Contains(f.Detail, "segmentation") && !strings.Contains(f.Detail, "SIGSEGV") {
				t.Errorf("crash detail %q does not name the signal", f.Detail)
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %s to notice", time.Since(start))
			}
		})
	}
}

func TestPythonWorkerCancel(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	eng, err := faultWorker(t, py, map[string]any{"step_us": 1000}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := eng.Generate(ctx, Request{Prompt: []int32{5}, MaxNewTokens: 1000000, IgnoreEOS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Finish != FinishCancelled || res.OutputTokens == 0 {
		t.Fatalf("result %+v; want cancelled after some tokens", res)
	}
	// A cancel right behind the request (the context is done before it is
	// sent) is never lost, however fast it follows.
	done, stop := context.WithCancel(context.Background())
	stop()
	res, err = eng.Generate(done, Request{Prompt: []int32{5}, MaxNewTokens: 1000000, IgnoreEOS: true}, nil)
	if err != nil || res.Finish != FinishCancelled || res.OutputTokens > 1000 {
		t.Fatalf("cancel at once: %+v, %v", res, err)
	}
	// The engine still works after a cancel.
	res, err = eng.Generate(context.Background(), Request{Prompt: []int32{5}, MaxNewTokens: 10, IgnoreEOS: true}, nil)
	if err != nil || res.Finish != FinishLength {
		t.Fatalf("after cancel: %+v, %v", res, err)
	}
}

// Several requests at once through the worker: a batch whose middle
// request fails (the others go on), a batch beyond the limit (refused
// whole, by lmdrive), and a cancel that ends one of two requests.
func TestPythonWorkerManyRequests(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	eng, err := faultWorker(t, py, map[string]any{"step_us": 500, "max_sequences": 4}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	be := eng.(BatchEngine)
	if eng.Info().Sequences() != 4 {
		t.Fatalf("info %+v; want 4 sequences", eng.Info())
	}
	reqs := []Request{{Prompt: []int32{5}, MaxNewTokens: 20, IgnoreEOS: true}, {Prompt: []int32{666}, MaxNewTokens: 20, IgnoreEOS: true},
		{Prompt: []int32{6}, MaxNewTokens: 20, IgnoreEOS: true}}
	counts := make([]atomic.Int64, len(reqs))
	outs, err := be.GenerateBatch(context.Background(), reqs, func(i int, ts []Token) { counts[i].Add(int64(len(ts))) })
	if err != nil {
		t.Fatal(err)
	}
	var ef *EngineFailure
	if !errors.As(outs[1].Err, &ef) || !strings.Contains(outs[1].Err.Error(), "666") || counts[1].Load() != 2 {
		t.Fatalf("request 666: %v after %d tokens; want its own failure", outs[1].Err, counts[1].Load())
	}
	for _, i := range []int{0, 2} {
		if outs[i].Err != nil || outs[i].Result.Finish != FinishLength || counts[i].Load() != 20 {
			t.Fatalf("request %d: %v, %+v, %d tokens", i, outs[i].Err, outs[i].Result, counts[i].Load())
		}
	}
	var le *BatchLimitError
	if _, err := be.GenerateBatch(context.Background(), make([]Request, 5), nil); !errors.As(err, &le) || le.Limit != 4 {
		t.Fatalf("a batch of 5: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var long Result
	var lerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		long, lerr = eng.Generate(ctx, Request{Prompt: []int32{5}, MaxNewTokens: 1000000, IgnoreEOS: true}, nil)
	}()
	short, err := eng.Generate(context.Background(), Request{Prompt: []int32{7}, MaxNewTokens: 200, IgnoreEOS: true}, nil)
	wg.Wait()
	if lerr != nil || long.Finish != FinishCancelled || err != nil || short.Finish != FinishLength || short.OutputTokens != 200 {
		t.Fatalf("cancelled one: %+v (%v); the other: %+v (%v)", long, lerr, short, err)
	}
}

func TestFindPython(t *testing.T) {
	look := func(name string) (string, error) {
		if name == "python3" || name == "/opt/py/bin/python" {
			return name, nil
		}
		return "", exec.ErrNotFound
	}
	for _, tc := range []struct{ flag, env, want, err string }{
		{"", "", "python3", ""},
		{"", "/opt/py/bin/python", "/opt/py/bin/python", ""},
		{"/opt/py/bin/python", "/nope", "/opt/py/bin/python", ""},
		{"/nope/python", "", "", "--python /nope/python: not an executable Python interpreter"},
		{"", "/nope/python", "", "LMDRIVE_PYTHON /nope/python: not an executable"},
	} {
		got, err := FindPython(tc.flag, tc.env, look)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FindPython(%q, %q) error %v; want %q", tc.flag, tc.env, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("FindPython(%q, %q) = %q, %v; want %q", tc.flag, tc.env, got, err, tc.want)
		}
	}
	_, err := FindPython("", "", func(string) (string, error) { return "", exec.ErrNotFound })
	if err == nil || !strings.Contains(err.Error(), "no Python interpreter: python3 is not on PATH") {
		t.Fatalf("no python: %v", err)
	}
}

// The embedded worker is the worker in the source tree, file for file.
func TestEmbeddedWorkerMatchesSource(t *testing.T) {
	dir, err := WriteEmbeddedWorker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Glob(filepath.Join("pyworker", "lmdrive_py", "*.py"))
	src = append(src, filepath.Join("pyworker", WorkerScript))
	for _, f := range src {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(f, "pyworker")))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: embedded copy differs or is missing (%v)", f, err)
		}
	}
}

func TestWorkerSearch(t *testing.T) {
	got := WorkerSearch("/w", "/opt/lmdrive/bin/lmdrive")
	want := []string{"/w", "/opt/lmdrive/lib/lmdrive/pyworker"}
	if strings.Join(got, ":") != strings.Join(want, ":") {
		t.Fatalf("WorkerSearch = %v; want %v", got, want)
	}
}

// A worker that cannot start the interpreter's program at all (an
// interpreter too old for the worker, here simulated by a script that
// answers like one) is a load failure with its one-line reason.
func TestPythonWorkerTooOld(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	script := filepath.Join(t.TempDir(), "old.py")
	os.WriteFile(script, []byte("import sys\nsys.path.insert(0, "+`"`+mustAbs(t, "pyworker")+`"`+")\nimport lmdrive_worker\nlmdrive_worker.MIN_PYTHON = (9, 0)\nlmdrive_worker.main()\n"), 0o600)
	_, err := StartPython(context.Background(), PythonOptions{Interpreter: py, WorkerDir: "pyworker", Script: script, Engine: "hf"})
	if err == nil || !strings.Contains(err.Error(), "is too old for lmdrive's worker") || !strings.Contains(err.Error(), "it needs 9.0 or later") {
		t.Fatalf("error %v", err)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The flags reach a Python engine's config: hf gets the settings it shares
// with ref, the others model and tp; --trust-remote-code reaches only them.
func TestPythonEngineSettings(t *testing.T) {
	for _, tc := range []struct {
		s    EngineSettings
		want string
	}{
		{EngineSettings{Engine: "hf", Model: "random:tiny", Seed: 3, Device: "cuda", Threads: 2, TP: 1},
			`{"device":"cuda","model":"random:tiny","seed":3,"threads":2,"tp":1}`},
		{EngineSettings{Engine: "vllm", Model: "/m", Seed: 3, Device: "cpu", TP: 2, TrustRemoteCode: true},
			`{"model":"/m","tp":2,"trust_remote_code":true}`},
		{EngineSettings{Engine: "hf", Model: "/m", Device: "cuda", TP: 1, Precision: "int8"},
			`{"device":"cuda","model":"/m","precision":"int8","seed":0,"tp":1}`},
		{EngineSettings{Engine: "hf", Model: "/m", Device: "cuda", TP: 1, Precision: "bf16"},
			`{"device":"cuda","dtype":"bf16","model":"/m","seed":0,"tp":1}`},
	} {
		got, err := tc.s.Config()
		if err != nil || string(got) != tc.want {
			t.Errorf("%+v: %s, %v; want %s", tc.s, got, err, tc.want)
		}
	}
	if _, err := (EngineSettings{Engine: "ref", Model: "random:tiny", TP: 1, TrustRemoteCode: true}).Config(); err == nil ||
		!strings.Contains(err.Error(), "engine ref runs none") {
		t.Fatalf("ref with --trust-remote-code: %v", err)
	}
	if _, err := (EngineSettings{Engine: "hf", Model: "/m", TP: 1, Precision: "fp8"}).Config(); err == nil ||
		!strings.Contains(err.Error(), "engine hf runs fp32, fp16, bf16, or int8 through bitsandbytes") {
		t.Fatalf("hf with fp8: %v", err)
	}
	if _, err := Open(context.Background(), OpenOptions{Engine: "hf", InProcess: true}); err == nil ||
		!strings.Contains(err.Error(), "runs in a Python worker process") {
		t.Fatalf("hf in process: %v", err)
	}
}

// A library's worker processes die with the worker: a hung worker whose
// child still runs is killed with its whole process group, and lmdrive does
// not wait on the log pipe the child holds.
func TestPythonWorkerLeavesNoOrphans(t *testing.T) {
	py := pyenvtest.Interpreter(t, false)
	start := time.Now()
	var log strings.Builder
	cfg, _ := json.Marshal(map[string]any{"mode": "child_hang_load"})
	script, _ := filepath.Abs(filepath.Join("pyworker", "tests", "fault_worker.py"))
	_, err := StartPython(context.Background(), PythonOptions{Interpreter: py, WorkerDir: "pyworker", Script: script,
		Engine: "fault", Config: cfg, Runner: RunnerOptions{LoadTimeout: 3 * time.Second, Log: &syncWriter{w: &log}}})
	var f *EngineFailure
	if !errors.As(err, &f) || f.Kind != "hung" {
		t.Fatalf("error %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	var pid int
	for _, line := range strings.Split(f.LogTail, "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "started child %d", &pid); err == nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no child pid in the log:\n%s", f.LogTail)
	}
	time.Sleep(100 * time.Millisecond)
	if alive(pid) {
		unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("child %d outlived its worker", pid)
	}
}

// alive: the process exists and is not a zombie waiting for its reaper.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
