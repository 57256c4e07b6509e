package driver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
	"github.com/lmdrive/lmdrive/driver/checkpoint"
)

// These tests drive the real reference engine library (make native). Where
// it is not built they skip, unless LMDRIVE_REQUIRE_NATIVE=1 (set by
// `make test`), which turns a missing library into a failure.

func refLibrary(t *testing.T) *Library {
	t.Helper()
	path, err := DefaultSearch("").Find("ref", FileExists)
	if err != nil {
		// Tests run in driver/: also try the build tree one level up.
		path, err = (Search{WorkDir: ".."}).Find("ref", FileExists)
	}
	if err != nil {
		if os.Getenv("LMDRIVE_REQUIRE_NATIVE") == "1" {
			t.Fatalf("reference engine library missing: %v", err)
		}
		t.Skipf("reference engine library not built (make native): %v", err)
	}
	lib, err := OpenLibrary(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

func refEngine(t *testing.T, lib *Library, cfg map[string]any) *NativeEngine {
	t.Helper()
	b, _ := json.Marshal(cfg)
	eng, err := NewNativeEngine(lib, "ref", string(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

type golden struct {
	Name       string  `json:"name"`
	Preset     string  `json:"preset"`
	Seed       uint64  `json:"seed"`
	Vocab      int     `json:"vocab_size"`
	Prompt     []int32 `json:"prompt"`
	LastK      int     `json:"last_k"`
	LogitsFile string  `json:"logits_file"`
	Greedy     []int32 `json:"greedy"`
}

func loadGolden(t *testing.T, name string) (golden, []float32) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "golden")
	var g golden
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, g.LogitsFile))
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, len(raw)/4)
	for i := range logits {
		logits[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if len(logits) != g.LastK*g.Vocab {
		t.Fatalf("%s: %d logits, want %d×%d", g.LogitsFile, len(logits), g.LastK, g.Vocab)
	}
	return g, logits
}

// refLogits calls the reference library's debug export lmdrive_ref_logits:
// one prefill over tokens, the logits of the last k positions.
func refLogits(t *testing.T, lib *Library, cfg string, tokens []int32, k, vocab int) []float32 {
	t.Helper()
	sym, err := purego.Dlsym(lib.handle, "lmdrive_ref_logits")
	if err != nil {
		t.Fatalf("lmdrive_ref_logits: %v", err)
	}
	var fn func(cfg string, toks *int32, n, k uint32, out *float32, e *cError) int32
	purego.RegisterFunc(&fn, sym)
	out := make([]float32, k*vocab)
	e := newCError()
	if err := e.err(fn(cfg, &tokens[0], uint32(len(tokens)), uint32(k), &out[0], e)); err != nil {
		t.Fatalf("lmdrive_ref_logits: %v", err)
	}
	keepAlive(tokens)
	return out
}

func maxRelErr(got, want []float32) float64 {
	var maxDiff, maxRef float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	return maxDiff / maxRef
}

// TestRefMatchesTransformers checks the CPU backend against logits and greedy
// tokens from Hugging Face transformers (testdata/golden, made on a GPU
// machine by testdata/golden/gpu_golden.sh) on checkpoints written by
// `lmdrive model init`, and checks that random:<preset> has the very same
// weights as the written checkpoint.
func TestRefMatchesTransformers(t *testing.T) {
	lib := refLibrary(t)
	for _, name := range []string{"tiny", "tiny-untied"} {
		t.Run(name, func(t *testing.T) {
			g, want := loadGolden(t, name)
			p, err := checkpoint.LookupPreset(g.Preset)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "ckpt")
			if err := checkpoint.Write(dir, p, checkpoint.Options{Seed: g.Seed}); err != nil {
				t.Fatal(err)
			}
			ckptCfg := fmt.Sprintf(`{"model":%q}`, dir)
			got := refLogits(t, lib, ckptCfg, g.Prompt, g.LastK, g.Vocab)
			rel := maxRelErr(got, want)
			t.Logf("%s: max|Δlogit|/max|logit| = %.3g", name, rel)
			if rel >= 1e-4 {
				t.Errorf("logits differ from transformers: relative error %.3g ≥ 1e-4", rel)
			}
			random := refLogits(t, lib, fmt.Sprintf(`{"model":"random:%s","seed":%d}`, g.Preset, g.Seed), g.Prompt, g.LastK, g.Vocab)
			for i := range random {
				if random[i] != got[i] {
					t.Fatalf("random:%s seed %d differs from its written checkpoint at logit %d: %g vs %g", g.Preset, g.Seed, i, random[i], got[i])
				}
			}

			eng := refEngine(t, lib, map[string]any{"model": dir})
			res, toks := generate(t, eng, Request{Prompt: g.Prompt, MaxNewTokens: len(g.Greedy), IgnoreEOS: true})
			if res.Finish != FinishLength {
				t.Fatalf("finish %s, want length", res.Finish)
			}
			for i, id := range g.Greedy {
				if toks[i].ID != id {
					t.Fatalf("greedy token %d = %d, transformers gave %d (all: %v)", i, toks[i].ID, id, ids(toks))
				}
			}
		})
	}
}

func generate(t *testing.T, eng Engine, req Request) (Result, []Token) {
	t.Helper()
	var toks []Token
	res, err := eng.Generate(context.Background(), req, func(ts []Token) { toks = append(toks, ts...) })
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != res.OutputTokens {
		t.Fatalf("%d tokens streamed, result says %d", len(toks), res.OutputTokens)
	}
	return res, toks
}

func ids(toks []Token) []int32 {
	out := make([]int32, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

// TestRefStopPaths drives every way a generation can end.
func TestRefStopPaths(t *testing.T) {
	lib := refLibrary(t)
	prompt := []int32{9707, 11, 1879, 0, 220, 101, 3923, 5023, 77, 1234}
	base := map[string]any{"model": "random:tiny-untied", "seed": 2}
	eng := refEngine(t, lib, base)
	// A reference run tells which tokens greedy decoding produces.
	_, ref := generate(t, eng, Request{Prompt: prompt, MaxNewTokens: 12, IgnoreEOS: true})
	seq := ids(ref)
	first := func(id int32) int {
		for i, x := range seq {
			if x == id {
				return i
			}
		}
		return -1
	}
	k := 5
	eosAt := first(seq[k]) // the first step that emits seq[k]

	t.Run("eos", func(t *testing.T) {
		e := refEngine(t, lib, map[string]any{"model": "random:tiny-untied", "seed": 2, "eos_ids": []int32{seq[k]}})
		res, toks := generate(t, e, Request{Prompt: prompt, MaxNewTokens: 12, WatchIDs: []int32{seq[k]}, WantLogprobs: true})
		if res.Finish != FinishEOS || len(toks) != eosAt+1 || res.StopToken != seq[k] {
			t.Fatalf("finish %s after %d tokens (stop token %d); want eos after %d", res.Finish, len(toks), res.StopToken, eosAt+1)
		}
		last := toks[len(toks)-1]
		if !last.Logprob.Valid() || len(last.Watched) != 1 || last.Watched[0] != last.Logprob {
			t.Fatalf("the EOS step's logprob %v and watched logprob %v should be equal and present", last.Logprob, last.Watched)
		}
		if !slicesContain(res.StopIDs, seq[k]) || res.IgnoreEOSApplied {
			t.Fatalf("applied stop ids %v, ignore_eos %v", res.StopIDs, res.IgnoreEOSApplied)
		}
		// ignore_eos: the same engine runs on, and the EOS id is no longer a stop id.
		res, toks = generate(t, e, Request{Prompt: prompt, MaxNewTokens: 12, IgnoreEOS: true})
		if res.Finish != FinishLength || len(toks) != 12 || slicesContain(res.StopIDs, seq[k]) || !res.IgnoreEOSApplied {
			t.Fatalf("ignore_eos: finish %s after %d, stop ids %v", res.Finish, len(toks), res.StopIDs)
		}
		// min_new_tokens holds EOS off.
		res, toks = generate(t, e, Request{Prompt: prompt, MaxNewTokens: 12, MinNewTokens: eosAt + 2})
		if len(toks) <= eosAt+1 {
			t.Fatalf("min_new_tokens %d: stopped after %d (%s)", eosAt+2, len(toks), res.Finish)
		}
	})
	t.Run("stop sequence", func(t *testing.T) {
		stop := []int32{seq[3], seq[4]}
		res, toks := generate(t, eng, Request{Prompt: prompt, MaxNewTokens: 12, StopSequences: [][]int32{{99999, 1}, stop}})
		got := ids(toks)
		if res.Finish != FinishStop || res.StopSequence != 1 || len(got) < 2 || got[len(got)-2] != stop[0] || got[len(got)-1] != stop[1] {
			t.Fatalf("finish %s, sequence %d, tokens %v; want a stop on %v", res.Finish, res.StopSequence, got, stop)
		}
	})
	t.Run("stop id survives ignore_eos", func(t *testing.T) {
		res, toks := generate(t, eng, Request{Prompt: prompt, MaxNewTokens: 12, IgnoreEOS: true, StopSequences: [][]int32{{seq[k]}}})
		if res.Finish != FinishStop || len(toks) != eosAt+1 || !slicesContain(res.StopIDs, seq[k]) {
			t.Fatalf("finish %s after %d tokens, stop ids %v", res.Finish, len(toks), res.StopIDs)
		}
	})
	t.Run("max_seq_len clamp", func(t *testing.T) {
		e := refEngine(t, lib, map[string]any{"model": "random:tiny-untied", "seed": 2, "max_seq_len": len(prompt) + 7})
		res, toks := generate(t, e, Request{Prompt: prompt, MaxNewTokens: 12, IgnoreEOS: true})
		if res.Finish != FinishLimit || len(toks) != 7 || res.MaxNewEffective != 7 || res.MaxNewRequested != 12 ||
			!strings.Contains(res.LimitSource, "max_seq_len") {
			t.Fatalf("finish %s after %d, effective %d of %d, limit %q", res.Finish, len(toks), res.MaxNewEffective, res.MaxNewRequested, res.LimitSource)
		}
		_, err := e.Generate(context.Background(), Request{Prompt: make([]int32, len(prompt)+7), MaxNewTokens: 3}, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "max_seq_len") {
			t.Fatalf("prompt as long as max_seq_len: %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		res, err := eng.Generate(ctx, Request{Prompt: prompt, MaxNewTokens: 100000, IgnoreEOS: true}, func(ts []Token) {
			if n += len(ts); n >= 3 {
				cancel()
			}
		})
		if err != nil || res.Finish != FinishCancelled || res.OutputTokens >= 1000 {
			t.Fatalf("cancel: %v, %+v", err, res)
		}
	})
	t.Run("sampling is seeded", func(t *testing.T) {
		req := Request{Prompt: prompt, MaxNewTokens: 16, IgnoreEOS: true, Sampling: Sampling{Temperature: 1.5, TopK: 50, TopP: 0.95, Seed: 7}}
		_, a := generate(t, eng, req)
		_, b := generate(t, eng, req)
		req.Sampling.Seed = 8
		_, c := generate(t, eng, req)
		if fmt.Sprint(ids(a)) != fmt.Sprint(ids(b)) || fmt.Sprint(ids(a)) == fmt.Sprint(ids(c)) {
			t.Fatalf("seed 7 twice: %v / %v; seed 8: %v", ids(a), ids(b), ids(c))
		}
	})
}

func TestRefBadInput(t *testing.T) {
	lib := refLibrary(t)
	cases := []struct{ cfg, want string }{
		{`{"model":"random:tiny","colour":"red"}`, "colour"},
		{`{"model":"random:huge"}`, "qwen2.5-14b"},
		{`{"model":"/nonexistent/model"}`, "/nonexistent/model"},
		{`{"seed":1}`, "model"},
		{`{"model":"random:tiny"`, "JSON"},
		{`{"model":"random:tiny","tp":2}`, `need device "cuda"`},
		{`{"model":"random:tiny","tp":0}`, `"tp" must be an integer`},
		{`{"model":"random:tiny","dtype":"bf16"}`, "not supported on the CPU backend"},
	}
	for _, tc := range cases {
		_, err := NewNativeEngine(lib, "ref", tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %s: error %v; want it to mention %q", tc.cfg, err, tc.want)
		}
	}
	eng := refEngine(t, lib, map[string]any{"model": "random:tiny"})
	if _, err := eng.Generate(context.Background(), Request{Prompt: []int32{1, 200000}, MaxNewTokens: 2}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("token outside the vocabulary: %v", err)
	}
}

// TestRefCalibrationMode checks the zero-compute mode used to measure lmdrive's own overhead.
func TestRefCalibrationMode(t *testing.T) {
	lib := refLibrary(t)
	eng := refEngine(t, lib, map[string]any{"model": "random:tiny", "calibrate": true})
	res, toks := generate(t, eng, Request{Prompt: []int32{1, 2, 3}, MaxNewTokens: 5000, IgnoreEOS: true})
	if res.Finish != FinishLength || len(toks) != 5000 {
		t.Fatalf("%s after %d", res.Finish, len(toks))
	}
}

func slicesContain(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestRefCUDAWithoutPlugin: a CPU-only build names what is missing when asked for a GPU.
func TestRefCUDAWithoutPlugin(t *testing.T) {
	lib := refLibrary(t)
	if FileExists(filepath.Join(filepath.Dir(lib.Path()), "liblmdrive_ref_cuda.so")) {
		t.Skip("this build has the CUDA backend")
	}
	_, err := NewNativeEngine(lib, "ref", `{"model":"random:tiny","device":"cuda"}`)
	if err == nil || !strings.Contains(err.Error(), "no CUDA backend") || !strings.Contains(err.Error(), "nvcc") {
		t.Fatalf("device cuda without the plugin: %v", err)
	}
}

// TestPresetTablesAgree: the Go preset table (model init) and the engine's
// own (random:<preset>) must describe the same shapes. Calibration mode
// builds no weights, so even the 72B preset is cheap to ask about.
func TestPresetTablesAgree(t *testing.T) {
	lib := refLibrary(t)
	for _, name := range checkpoint.Presets() {
		p, _ := checkpoint.LookupPreset(name)
		eng := refEngine(t, lib, map[string]any{"model": "random:" + name, "calibrate": true})
		info := eng.Info()
		if info.VocabSize != p.Vocab || info.MaxSeqLen != p.MaxPositions {
			t.Errorf("%s: engine says vocab %d, max_seq_len %d; Go table says %d, %d", name, info.VocabSize, info.MaxSeqLen, p.Vocab, p.MaxPositions)
		}
	}
}

// A batch through the runner child gives every request the tokens it gets
// alone, and the engine reports the batch it ran in.
func TestRefBatchThroughRunnerMatchesAlone(t *testing.T) {
	lib := refLibrary(t)
	argv, env := testRunner()
	cfg, _ := json.Marshal(map[string]any{"model": "random:tiny-untied", "seed": 4, "max_batch": 8, "step_tokens": 32})
	eng, err := StartRunner(context.Background(), RunnerOptions{Command: argv, Env: env, Engine: "ref", Library: lib.Path(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if eng.Info().Sequences() != 8 || !eng.Info().Joins() || eng.Info().MaxStepTokens != 32 {
		t.Fatalf("info %+v", eng.Info())
	}
	reqs := make([]Request, 8)
	alone := make([][]int32, 8)
	for i := range reqs {
		prompt := make([]int32, 40+7*i)
		for j := range prompt {
			prompt[j] = int32((j*7919 + i*104729 + 3) % 150000)
		}
		reqs[i] = Request{Prompt: prompt, MaxNewTokens: 10 + i, IgnoreEOS: true}
		_, toks := generate(t, eng, reqs[i])
		alone[i] = ids(toks)
	}
	got := make([][]int32, 8)
	outs, err := eng.GenerateBatch(context.Background(), reqs, func(i int, ts []Token) {
		for _, tk := range ts {
			got[i] = append(got[i], tk.ID)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Err != nil || o.Result.Finish != FinishLength || fmt.Sprint(got[i]) != fmt.Sprint(alone[i]) {
			t.Fatalf("request %d: %v %+v\nbatched %v\nalone   %v", i, o.Err, o.Result, got[i], alone[i])
		}
		if o.Result.MaxBatch != 8 || o.Result.ScheduledNs < o.Result.SubmitNs {
			t.Fatalf("request %d: max batch %d, scheduled %d, submitted %d", i, o.Result.MaxBatch, o.Result.ScheduledNs, o.Result.SubmitNs)
		}
	}
}
