package conformance

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/lmdrive/lmdrive/driver"
)

// PythonTarget describes one Python engine under test (driver.StartPython).
type PythonTarget struct {
	Engine string         // hf, vllm, lmdeploy or trtllm-py
	Python string         // interpreter ("" : LMDRIVE_PYTHON, then python3)
	Env    []string       // added to the worker's environment
	Config map[string]any // config of a working engine (model, tp, ...)
	Prompt []int32        // a prompt the engine accepts
	// MaxSeqKey is the config key of the engine's length limit
	// (max_model_len, session_len, max_seq_len), or "" when it has none.
	MaxSeqKey string
	// BatchInvariant: a request's greedy tokens do not depend on the other
	// requests of a batch (the fakes; real libraries batch with other
	// kernels, so they need not be).
	BatchInvariant bool
	// StopIDsDroppedUnderIgnoreEOS: the library ignores the caller's stop
	// ids when ignore_eos is set (TensorRT-LLM, LMDeploy TurboMind), so the
	// run goes to full length and the result lists no stop ids.
	StopIDsDroppedUnderIgnoreEOS bool
}

// RunPython runs the checks of Run that apply to an engine behind the
// Python worker: info, length and timeline, determinism, stop sequences, a
// stop id under ignore_eos (kept or dropped, as the library does), cancel,
// bad input as an error, the length limit as "limit", the adapter's
// zero-compute mode, and, where the engine runs several requests at once
// (max_sequences > 1), the checks of runMany.
func RunPython(t *testing.T, tg PythonTarget) {
	open := func(t *testing.T, extra map[string]any) (driver.Engine, error) {
		cfg, err := json.Marshal(merge(tg.Config, extra))
		if err != nil {
			t.Fatal(err)
		}
		return driver.StartPython(context.Background(), driver.PythonOptions{Interpreter: tg.Python, Engine: tg.Engine, Config: cfg, Env: tg.Env,
			Runner: driver.RunnerOptions{LoadTimeout: 10 * time.Minute, PrefillTimeout: 10 * time.Minute, StallTimeout: 2 * time.Minute}})
	}
	create := func(t *testing.T, extra map[string]any) driver.Engine {
		t.Helper()
		e, err := open(t, extra)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	eng := create(t, nil)
	info := eng.Info()
	t.Run("info", func(t *testing.T) {
		if info.VocabSize <= 0 || info.Backend == "" || info.Version == "" || info.LoadNs <= 0 || len(info.Versions) == 0 ||
			len(info.Config) == 0 || info.TPSize < 1 {
			t.Fatalf("info %+v", info)
		}
	})
	const n = 24
	base := driver.Request{Prompt: tg.Prompt, MaxNewTokens: n, IgnoreEOS: true}
	res, toks := generate(t, eng, base)
	seq := ids(toks)
	t.Run("length", func(t *testing.T) {
		if res.Finish != driver.FinishLength || len(toks) != n || res.PromptTokens != len(tg.Prompt) ||
			res.MaxNewRequested != n || res.MaxNewEffective != n || !res.IgnoreEOSApplied || len(res.Config) == 0 {
			t.Fatalf("result %+v with %d tokens", res, len(toks))
		}
		checkTimeline(t, res, toks)
	})
	t.Run("greedy is deterministic", func(t *testing.T) { checkDeterministic(t, eng, base, seq) })
	if info.Sequences() > 1 {
		be, ok := eng.(driver.BatchEngine)
		if !ok {
			t.Fatalf("engine %s reports %d sequences but takes no batch", tg.Engine, info.Sequences())
		}
		runMany(t, be, tg.Prompt, tg.BatchInvariant, base, seq)
	}
	t.Run("stop sequence", func(t *testing.T) { checkStopSequence(t, eng, base, seq) })
	t.Run("a stop id under ignore_eos", func(t *testing.T) {
		id := seq[7]
		r, got := generate(t, eng, withStops(base, [][]int32{{id}}))
		if tg.StopIDsDroppedUnderIgnoreEOS {
			if r.Finish != driver.FinishLength || len(got) != n || len(r.StopIDs) != 0 {
				t.Fatalf("finish %s after %d tokens, stop ids %v; the library drops stop ids under ignore_eos", r.Finish, len(got), r.StopIDs)
			}
			return
		}
		if r.Finish != driver.FinishStop || got[len(got)-1].ID != id || !slices.Contains(r.StopIDs, id) {
			t.Fatalf("finish %s after %v, stop ids %v", r.Finish, ids(got), r.StopIDs)
		}
	})
	t.Run("cancel", func(t *testing.T) { checkCancel(t, eng, tg.Prompt) })
	t.Run("bad input is an error, not a crash", func(t *testing.T) {
		if _, err := eng.Generate(context.Background(), driver.Request{Prompt: []int32{int32(info.VocabSize) + 5}, MaxNewTokens: 2}, nil); err == nil {
			t.Fatal("a token outside the vocabulary was accepted")
		}
		if r, _ := generate(t, eng, base); r.Finish != driver.FinishLength {
			t.Fatalf("the engine did not recover from bad input: %+v", r)
		}
		if e, err := open(t, map[string]any{"no_such_key": true}); err == nil {
			e.Close()
			t.Fatal("an unknown config key was accepted")
		}
	})
	if tg.MaxSeqKey != "" {
		t.Run("length limit", func(t *testing.T) {
			e := create(t, map[string]any{tg.MaxSeqKey: len(tg.Prompt) + 5})
			r, got := generate(t, e, base)
			if r.Finish != driver.FinishLimit || len(got) != 5 || r.MaxNewEffective != 5 || r.MaxNewRequested != n || r.LimitSource == "" {
				t.Fatalf("finish %s after %d, effective %d of %d, limit %q", r.Finish, len(got), r.MaxNewEffective, r.MaxNewRequested, r.LimitSource)
			}
		})
	}
	t.Run("zero-compute mode", func(t *testing.T) {
		e := create(t, map[string]any{"calibrate": true, "model": ""})
		r, got := generate(t, e, driver.Request{Prompt: []int32{1}, MaxNewTokens: 2000, IgnoreEOS: true})
		if r.Finish != driver.FinishLength || len(got) != 2000 {
			t.Fatalf("calibrate: %+v", r)
		}
		checkTimeline(t, r, got)
	})
}
