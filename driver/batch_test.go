package driver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// openFake creates the fake engine in this process with the given config.
func openFake(t *testing.T, cfg string, flags ...string) *NativeEngine {
	t.Helper()
	lib, err := OpenLibrary(buildFakeEngine(t, flags...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	eng, err := NewNativeEngine(lib, "fake", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// startFakeRunner starts the fake engine in a runner child with the given config.
func startFakeRunner(t *testing.T, cfg map[string]any) *RemoteEngine {
	t.Helper()
	argv, env := testRunner()
	b, _ := json.Marshal(cfg)
	eng, err := StartRunner(context.Background(), RunnerOptions{Command: argv, Env: env, Engine: "fake", Library: buildFakeEngine(t), Config: b,
		LoadTimeout: 20 * time.Second, PrefillTimeout: 20 * time.Second, StallTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func TestABI10LibraryIsSingleStream(t *testing.T) {
	eng := openFake(t, `{"max_seq":8}`, "-DFAKE_ABI_MINOR=0")
	info := eng.Info()
	if info.ABI != "1.0" || info.MaxSequences != 1 || len(info.Batching) != 0 || info.Sequences() != 1 {
		t.Fatalf("info %+v; want ABI 1.0 read as one stream at a time", info)
	}
	res, err := eng.Generate(context.Background(), Request{Prompt: []int32{1}, MaxNewTokens: 5}, nil)
	if err != nil || res.OutputTokens != 5 || res.ScheduledNs != -1 || res.MeanBatch != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	_, err = eng.GenerateBatch(context.Background(), []Request{{Prompt: []int32{1}, MaxNewTokens: 2}, {Prompt: []int32{2}, MaxNewTokens: 2}}, nil)
	var le *BatchLimitError
	if !errors.As(err, &le) || le.Limit != 1 || !strings.Contains(err.Error(), "at most 1") {
		t.Fatalf("batch of 2 on a 1.0 library: %v", err)
	}
	outs, err := eng.GenerateBatch(context.Background(), []Request{{Prompt: []int32{1}, MaxNewTokens: 4}}, nil)
	if err != nil || len(outs) != 1 || outs[0].Err != nil || outs[0].Result.OutputTokens != 4 {
		t.Fatalf("batch of 1 on a 1.0 library: %v %+v", err, outs)
	}
}

// generateMany runs the same kind of batch through any BatchEngine: four
// requests, the third of which fails inside the engine after 3 tokens.
func generateMany(t *testing.T, eng BatchEngine) {
	t.Helper()
	reqs := []Request{
		{Prompt: []int32{1}, MaxNewTokens: 40}, {Prompt: []int32{2}, MaxNewTokens: 50},
		{Prompt: []int32{666}, MaxNewTokens: 50}, {Prompt: []int32{4}, MaxNewTokens: 60},
	}
	var mu sync.Mutex
	got := make([][]Token, len(reqs))
	outs, err := eng.GenerateBatch(context.Background(), reqs, func(i int, ts []Token) {
		mu.Lock()
		got[i] = append(got[i], ts...)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		want, finish := reqs[i].MaxNewTokens, FinishLength
		if i == 2 {
			want, finish = 3, FinishError
		}
		if o.Err != nil || o.Result.Finish != finish || o.Result.OutputTokens != want || len(got[i]) != want {
			t.Fatalf("request %d: %v %+v with %d tokens; want %s after %d", i, o.Err, o.Result, len(got[i]), finish, want)
		}
		for k, tk := range got[i] {
			if tk.Index != k || tk.ID != int32(1000+k) {
				t.Fatalf("request %d token %d = %+v", i, k, tk)
			}
		}
	}
	// The four ran at once: each started before any ended.
	for i := range outs {
		for j := range outs {
			if outs[i].Result.SubmitNs > outs[j].Result.DoneNs {
				t.Fatalf("request %d was submitted after request %d ended", i, j)
			}
		}
	}
	_, err = eng.GenerateBatch(context.Background(), append(reqs, reqs...), nil)
	var le *BatchLimitError
	if !errors.As(err, &le) || le.Batch != 8 || le.Limit != 4 {
		t.Fatalf("batch of 8 on an engine of 4: %v", err)
	}
}

func TestNativeEngineBatch(t *testing.T) {
	eng := openFake(t, `{"max_seq":4,"step_us":200}`)
	if eng.Info().Sequences() != 4 || !eng.Info().Joins() {
		t.Fatalf("info %+v", eng.Info())
	}
	generateMany(t, eng)
}

func TestRemoteEngineBatch(t *testing.T) {
	eng := startFakeRunner(t, map[string]any{"max_seq": 4, "step_us": 200})
	if eng.Info().Sequences() != 4 {
		t.Fatalf("info %+v", eng.Info())
	}
	generateMany(t, eng)
	// A batch the engine refuses as a whole comes back as one error.
	_, err := eng.GenerateBatch(context.Background(), []Request{{Prompt: []int32{1}, MaxNewTokens: 2}, {Prompt: []int32{777}, MaxNewTokens: 2}}, nil)
	if err == nil || !strings.Contains(err.Error(), "777 is refused") {
		t.Fatalf("refused batch: %v", err)
	}
	if _, err := eng.Generate(context.Background(), Request{Prompt: []int32{1}, MaxNewTokens: 2}, nil); err != nil {
		t.Fatalf("after a refused batch: %v", err)
	}
}

// More callers than the engine runs at once: the rest wait, nobody fails,
// and never more than the limit are in flight.
func testConcurrentGenerates(t *testing.T, eng Engine, limit int) {
	t.Helper()
	const callers = 10
	var wg sync.WaitGroup
	res := make([]Result, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = eng.Generate(context.Background(), Request{Prompt: []int32{int32(i + 1)}, MaxNewTokens: 20}, nil)
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || res[i].OutputTokens != 20 {
			t.Fatalf("caller %d: %v %+v", i, errs[i], res[i])
		}
	}
	peak := 0
	for i := range callers {
		n := 0
		for j := range callers {
			if res[j].SubmitNs <= res[i].SubmitNs && res[i].SubmitNs < res[j].DoneNs {
				n++
			}
		}
		peak = max(peak, n)
	}
	if peak > limit || peak < 2 {
		t.Fatalf("%d generations overlapped at most; want between 2 and %d", peak, limit)
	}
}

func TestNativeEngineConcurrentGenerates(t *testing.T) {
	testConcurrentGenerates(t, openFake(t, `{"max_seq":3,"step_us":300}`), 3)
}

func TestRemoteEngineConcurrentGenerates(t *testing.T) {
	testConcurrentGenerates(t, startFakeRunner(t, map[string]any{"max_seq": 3, "step_us": 300}), 3)
}

// The library itself refuses what exceeds its limit (the Go side normally
// never asks): BUSY, and nothing is left started.
func TestLibraryRefusesBeyondItsLimit(t *testing.T) {
	eng := openFake(t, `{"max_seq":2}`)
	reqs := []Request{{Prompt: []int32{1}, MaxNewTokens: 2}, {Prompt: []int32{1}, MaxNewTokens: 2}, {Prompt: []int32{1}, MaxNewTokens: 2}}
	if _, err := eng.start(reqs); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("start_batch of 3 on a library of 2: %v", err)
	}
	if _, err := eng.Generate(context.Background(), reqs[0], nil); err != nil {
		t.Fatalf("after a refused batch: %v", err)
	}
}

func TestRemoteEngineCancelOneOfMany(t *testing.T) {
	eng := startFakeRunner(t, map[string]any{"max_seq": 2, "step_us": 500})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var long Result
	var lerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		long, lerr = eng.Generate(ctx, Request{Prompt: []int32{1}, MaxNewTokens: 100000}, func(ts []Token) {
			if n += len(ts); n >= 5 {
				cancel()
			}
		})
	}()
	short, err := eng.Generate(context.Background(), Request{Prompt: []int32{2}, MaxNewTokens: 30}, nil)
	wg.Wait()
	if lerr != nil || long.Finish != FinishCancelled || err != nil || short.Finish != FinishLength || short.OutputTokens != 30 {
		t.Fatalf("cancelled %v %+v; other %v %+v", lerr, long, err, short)
	}
}

// A worker that speaks the protocol without request ids (one request at a
// time) still works: events without an id belong to the request in flight.
func TestRouteEventsWithoutID(t *testing.T) {
	r := &RemoteEngine{pending: map[uint64]*pendingRequest{}, wake: make(chan struct{}, 1), log: newTailBuffer(1024)}
	p := r.register(1)[0]
	r.route(event{Ev: "tokens", Tokens: newTokenBatch([]Token{{ID: 5, Bundle: 1}})})
	res := Result{OutputTokens: 1}
	r.route(event{Ev: "result", Result: &res})
	var toks []Token
	got, _, err := r.await(context.Background(), p, func(ts []Token) { toks = append(toks, ts...) })
	if err != nil || got.OutputTokens != 1 || len(toks) != 1 || toks[0].ID != 5 {
		t.Fatalf("%v %+v %v", err, got, toks)
	}
}

// After Close the engine says it is closed, not that it crashed.
func TestRemoteEngineClosed(t *testing.T) {
	eng := startFakeRunner(t, map[string]any{"max_seq": 2})
	eng.Close()
	_, err := eng.Generate(context.Background(), Request{Prompt: []int32{1}, MaxNewTokens: 2}, nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// The clock lmdrive stamps arrivals with is the engine's.
func TestMonotonicNsIsTheLibraryClock(t *testing.T) {
	eng := openFake(t, `{}`)
	a, b := MonotonicNs(), eng.Now()
	if d := b - a; d < 0 || d > int64(time.Second) {
		t.Fatalf("MonotonicNs %d and the library's now_ns %d differ by %d ns", a, b, d)
	}
}

// A context cancelled before Generate still starts the request when a place
// is free: it ends cancelled, as for a cancel during the run.
func TestGenerateWithCancelledContext(t *testing.T) {
	for name, eng := range map[string]Engine{
		"in-process": openFake(t, `{"max_seq":2,"step_us":1000}`),
		"runner":     startFakeRunner(t, map[string]any{"max_seq": 2, "step_us": 1000}),
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := eng.Generate(ctx, Request{Prompt: []int32{1}, MaxNewTokens: 100000}, nil)
		if err != nil || res.Finish != FinishCancelled {
			t.Fatalf("%s: %v, %+v", name, err, res)
		}
	}
}
