// Package conformance checks that an engine library implements lmdrive's
// ABI faithfully: version and info, generation through every stop path,
// cancel, error reporting, token indices, timestamps and bundles, and (ABI
// 1.1) several generations at once: batches, concurrent starts, joining a
// running batch, cancelling one request of many. CI runs it against the
// reference engine; any shim built against an SDK can be run through the
// same checks (see conformance_test.go).
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/driver"
)

// Target describes one library under test.
type Target struct {
	Engine  string         // lmdrive's name for it (ref, trtllm, turbomind)
	Library string         // path to the .so
	Config  map[string]any // creation config of a working engine
	Prompt  []int32        // a prompt the engine accepts
	// Optional config keys the engine understands, enabling more checks.
	EOSKey    string // config key taking a list of EOS ids ("eos_ids"), or ""
	MaxSeqKey string // config key taking a length limit ("max_seq_len"), or ""
	// BatchInvariant: greedy tokens of a request do not depend on what else
	// is in its batch (the reference engine on the CPU). Engines whose
	// kernels change with the batch size leave it false.
	BatchInvariant bool
}

// abiOK reports whether an ABI version string is one this lmdrive speaks:
// the same major, any minor up to its own.
func abiOK(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major == driver.ABIMajor && minor <= driver.ABIMinor
}

// Run runs every check against t.
func Run(t *testing.T, tg Target) {
	lib, err := driver.OpenLibrary(tg.Library)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { lib.Close() })

	t.Run("library describes itself", func(t *testing.T) {
		r := driver.Inspect(tg.Engine, driver.Search{Flag: tg.Library})
		if r.Error != "" || !abiOK(r.ABI) || r.Backend == "" || r.Version == "" {
			t.Fatalf("inspect: %+v", r)
		}
	})
	eng := create(t, lib, tg, nil)
	info := eng.Info()
	t.Run("info", func(t *testing.T) {
		if info.VocabSize <= 0 || info.Backend == "" || info.Version == "" || !abiOK(info.ABI) || info.LoadNs <= 0 {
			t.Fatalf("info %+v", info)
		}
		if len(info.EOSIDs) > 32 || info.TPSize < 1 || info.MaxSequences < 1 {
			t.Fatalf("info %+v", info)
		}
		if info.ABI == "1.0" && (info.MaxSequences != 1 || len(info.Batching) > 0) {
			t.Fatalf("an ABI 1.0 library must read as single-stream: %+v", info)
		}
	})

	const n = 24
	base := driver.Request{Prompt: tg.Prompt, MaxNewTokens: n, IgnoreEOS: true}
	res, toks := generate(t, eng, base)
	seq := ids(toks)
	t.Run("length", func(t *testing.T) {
		if res.Finish != driver.FinishLength || len(toks) != n || res.OutputTokens != n || res.PromptTokens != len(tg.Prompt) ||
			res.MaxNewRequested != n || res.MaxNewEffective != n {
			t.Fatalf("result %+v with %d tokens", res, len(toks))
		}
		checkTimeline(t, res, toks)
	})
	t.Run("greedy is deterministic", func(t *testing.T) { checkDeterministic(t, eng, base, seq) })
	t.Run("stop sequence", func(t *testing.T) { checkStopSequence(t, eng, base, seq) })
	t.Run("a stop id survives ignore_eos", func(t *testing.T) {
		id := seq[7]
		r, got := generate(t, eng, withStops(base, [][]int32{{id}}))
		if r.Finish != driver.FinishStop || got[len(got)-1].ID != id || !slices.Contains(r.StopIDs, id) || !r.IgnoreEOSApplied {
			t.Fatalf("finish %s after %v, stop ids %v", r.Finish, ids(got), r.StopIDs)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		if took := checkCancel(t, eng, tg.Prompt); took > 30*time.Second {
			t.Fatalf("cancel took %s", took)
		}
	})
	t.Run("bad input is an error, not a crash", func(t *testing.T) {
		_, err := eng.Generate(context.Background(), driver.Request{Prompt: []int32{int32(info.VocabSize) + 5}, MaxNewTokens: 2}, nil)
		var ee *driver.EngineError
		if !errors.As(err, &ee) || !errors.Is(err, driver.ErrInvalid) || ee.Message == "" {
			t.Fatalf("token outside the vocabulary: %v", err)
		}
		bad := map[string]any{"no_such_key": true}
		if _, err := driver.NewNativeEngine(lib, tg.Engine, mustJSON(t, merge(tg.Config, bad))); err == nil {
			t.Fatal("an unknown config key was accepted")
		}
		if _, err := driver.NewNativeEngine(lib, tg.Engine, "{not json"); err == nil {
			t.Fatal("malformed config JSON was accepted")
		}
	})
	if info.Sequences() > 1 {
		runMany(t, eng, tg.Prompt, tg.BatchInvariant, base, seq)
	}
	if tg.EOSKey != "" {
		t.Run("eos", func(t *testing.T) {
			id := seq[9]
			e := create(t, lib, tg, map[string]any{tg.EOSKey: []int32{id}})
			r, got := generate(t, e, driver.Request{Prompt: tg.Prompt, MaxNewTokens: n})
			if r.Finish != driver.FinishEOS || got[len(got)-1].ID != id || r.StopToken != id || r.IgnoreEOSApplied {
				t.Fatalf("finish %s after %v (stop token %d)", r.Finish, ids(got), r.StopToken)
			}
			r, got = generate(t, e, base)
			if r.Finish != driver.FinishLength || len(got) != n || slices.Contains(r.StopIDs, id) {
				t.Fatalf("ignore_eos: finish %s after %d, stop ids %v", r.Finish, len(got), r.StopIDs)
			}
		})
	}
	if tg.MaxSeqKey != "" {
		t.Run("max_seq_len clamp", func(t *testing.T) {
			e := create(t, lib, tg, map[string]any{tg.MaxSeqKey: len(tg.Prompt) + 5})
			r, got := generate(t, e, base)
			if r.Finish != driver.FinishLimit || len(got) != 5 || r.MaxNewEffective != 5 || r.MaxNewRequested != n || r.LimitSource == "" {
				t.Fatalf("finish %s after %d, effective %d of %d, limit %q", r.Finish, len(got), r.MaxNewEffective, r.MaxNewRequested, r.LimitSource)
			}
		})
	}
}

// runMany checks an engine that runs several generations at once (ABI 1.1,
// or a Python engine whose library batches): a batch, the limit, concurrent
// starts, a cancel that ends one request of several, and a request joining
// a running one. alone is base's greedy output on its own; invariant: each
// request's greedy tokens in a batch must equal its tokens alone.
func runMany(t *testing.T, eng driver.BatchEngine, prompt []int32, invariant bool, base driver.Request, alone []int32) {
	info := eng.Info()
	n := min(info.Sequences(), 4)
	// Distinct prompts of the same length: the first id varies.
	reqs := make([]driver.Request, n)
	for i := range reqs {
		reqs[i] = base
		reqs[i].Prompt = slices.Clone(prompt)
		reqs[i].Prompt[0] = prompt[(i+1)%len(prompt)]
	}
	reqs[0] = base
	t.Run("batch", func(t *testing.T) {
		toks := make([][]driver.Token, n)
		outs, err := eng.GenerateBatch(context.Background(), reqs, func(i int, ts []driver.Token) { toks[i] = append(toks[i], ts...) })
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			if o.Err != nil || o.Result.Finish != driver.FinishLength || len(toks[i]) != base.MaxNewTokens {
				t.Fatalf("request %d of %d: %v, %+v with %d tokens", i, n, o.Err, o.Result, len(toks[i]))
			}
			checkTimeline(t, o.Result, toks[i])
			if o.Result.MaxBatch > n {
				t.Fatalf("request %d: max batch %d in a batch of %d", i, o.Result.MaxBatch, n)
			}
			if !invariant {
				continue
			}
			want := alone
			if i > 0 {
				_, single := generate(t, eng, reqs[i])
				want = ids(single)
			}
			if got := ids(toks[i]); !slices.Equal(got, want) {
				t.Fatalf("request %d: batched %v, alone %v", i, got, want)
			}
		}
	})
	t.Run("beyond the limit", func(t *testing.T) {
		many := make([]driver.Request, info.Sequences()+1)
		for i := range many {
			many[i] = base
		}
		var le *driver.BatchLimitError
		if _, err := eng.GenerateBatch(context.Background(), many, nil); !errors.As(err, &le) || le.Limit != info.Sequences() {
			t.Fatalf("a batch of %d: %v; want a BatchLimitError naming %d", len(many), err, info.Sequences())
		}
	})
	t.Run("concurrent starts", func(t *testing.T) {
		var wg sync.WaitGroup
		res := make([]driver.Result, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = eng.Generate(context.Background(), reqs[i], nil)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || res[i].Finish != driver.FinishLength || res[i].OutputTokens != base.MaxNewTokens {
				t.Fatalf("request %d: %v, %+v", i, errs[i], res[i])
			}
		}
	})
	t.Run("cancel one of many", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		long := base
		long.MaxNewTokens = 1 << 20
		var wg sync.WaitGroup
		var cancelled driver.Result
		var cerr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			count := 0
			cancelled, cerr = eng.Generate(ctx, long, func(ts []driver.Token) {
				if count += len(ts); count >= 3 {
					cancel()
				}
			})
		}()
		r, err := eng.Generate(context.Background(), reqs[n-1], nil)
		wg.Wait()
		if cerr != nil || cancelled.Finish != driver.FinishCancelled {
			t.Fatalf("cancelled request: %v, %+v", cerr, cancelled)
		}
		if err != nil || r.Finish != driver.FinishLength || r.OutputTokens != base.MaxNewTokens {
			t.Fatalf("the other request: %v, %+v", err, r)
		}
	})
	if info.Joins() {
		// A request sent while another runs (one with no end in sight)
		// must get its tokens before that one ends: it joined.
		t.Run("join a running batch", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			long := base
			long.MaxNewTokens = 1 << 20
			started := make(chan struct{})
			var once sync.Once
			var first driver.Result
			var ferr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, ferr = eng.Generate(ctx, long, func([]driver.Token) { once.Do(func() { close(started) }) })
			}()
			<-started
			second, err := eng.Generate(context.Background(), reqs[n-1], nil)
			cancel()
			wg.Wait()
			if ferr != nil || err != nil || second.Finish != driver.FinishLength ||
				(first.Finish != driver.FinishCancelled && first.Finish != driver.FinishLimit) {
				t.Fatalf("%v %v; %+v %+v", ferr, err, first, second)
			}
			if second.FirstNs >= first.LastNs {
				t.Fatalf("the second request's first token (%d) came after the running one's last (%d): it did not join", second.FirstNs, first.LastNs)
			}
		})
	}
}

// checkTimeline checks indices, bundles and that every time is monotonic
// and inside submit … done.
func checkTimeline(t *testing.T, r driver.Result, toks []driver.Token) {
	t.Helper()
	if !(r.SubmitNs > 0 && r.SubmitNs <= r.FirstNs && r.FirstNs <= r.LastNs && r.LastNs <= r.DoneNs) {
		t.Fatalf("times submit %d first %d last %d done %d are out of order", r.SubmitNs, r.FirstNs, r.LastNs, r.DoneNs)
	}
	if toks[0].TimeNs != r.FirstNs || toks[len(toks)-1].TimeNs != r.LastNs {
		t.Fatalf("first/last token times %d/%d differ from the result's %d/%d", toks[0].TimeNs, toks[len(toks)-1].TimeNs, r.FirstNs, r.LastNs)
	}
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && toks[j].TimeNs == toks[i].TimeNs {
			j++
		}
		for k := i; k < j; k++ {
			if toks[k].Index != k || toks[k].Bundle != j-i {
				t.Fatalf("token %d: index %d, bundle %d; the observation holds %d tokens", k, toks[k].Index, toks[k].Bundle, j-i)
			}
		}
		if i > 0 && toks[i].TimeNs < toks[i-1].TimeNs {
			t.Fatalf("token %d observed before token %d", i, i-1)
		}
		i = j
	}
}

func create(t *testing.T, lib *driver.Library, tg Target, extra map[string]any) *driver.NativeEngine {
	t.Helper()
	e, err := driver.NewNativeEngine(lib, tg.Engine, mustJSON(t, merge(tg.Config, extra)))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func generate(t *testing.T, e driver.Engine, req driver.Request) (driver.Result, []driver.Token) {
	t.Helper()
	var toks []driver.Token
	r, err := e.Generate(context.Background(), req, func(ts []driver.Token) { toks = append(toks, ts...) })
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(toks) == 0 || len(toks) != r.OutputTokens {
		t.Fatalf("%d tokens streamed, result says %d", len(toks), r.OutputTokens)
	}
	return r, toks
}

func withStops(r driver.Request, stops [][]int32) driver.Request {
	r.StopSequences = stops
	return r
}

func ids(toks []driver.Token) []int32 {
	out := make([]int32, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("config is not JSON-encodable: %v", err)
	}
	return string(b)
}

// checkDeterministic: the same greedy request gives seq again.
func checkDeterministic(t *testing.T, eng driver.Engine, base driver.Request, seq []int32) {
	t.Helper()
	_, again := generate(t, eng, base)
	if !slices.Equal(ids(again), seq) {
		t.Fatalf("%v then %v", seq, ids(again))
	}
}

// checkStopSequence: a stop sequence taken from seq ends the run right after it.
func checkStopSequence(t *testing.T, eng driver.Engine, base driver.Request, seq []int32) {
	t.Helper()
	stop := seq[4:6]
	r, got := generate(t, eng, withStops(base, [][]int32{stop}))
	end := ids(got)
	if r.Finish != driver.FinishStop || r.StopSequence != 0 || len(end) < 2 || !slices.Equal(end[len(end)-2:], stop) || len(end) > 6 {
		t.Fatalf("finish %s, sequence %d, tokens %v; want a stop on %v", r.Finish, r.StopSequence, end, stop)
	}
}

// checkCancel cancels an endless request after its third token and checks
// that it ends as cancelled; it returns how long that took.
func checkCancel(t *testing.T, eng driver.Engine, prompt []int32) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	count := 0
	start := time.Now()
	r, err := eng.Generate(ctx, driver.Request{Prompt: prompt, MaxNewTokens: 1 << 20, IgnoreEOS: true}, func(ts []driver.Token) {
		if count += len(ts); count >= 3 {
			cancel()
		}
	})
	if err != nil || r.Finish != driver.FinishCancelled || r.OutputTokens >= 1<<20 {
		t.Fatalf("%v, %+v", err, r)
	}
	return time.Since(start)
}
