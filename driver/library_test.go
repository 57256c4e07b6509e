package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

func TestOpenLibraryErrors(t *testing.T) {
	cases := []struct {
		name  string
		path  func(t *testing.T) string
		wants []string
	}{
		{"missing file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "liblmdrive_nope.so") },
			[]string{"liblmdrive_nope.so", "ldd"}},
		{"not a library", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "liblmdrive_text.so")
			writeFile(p, "not an ELF file")
			return p
		}, []string{"liblmdrive_text.so"}},
		{"missing entry symbol", func(t *testing.T) string { return buildFakeEngine(t, "-DFAKE_NO_ENTRY") },
			[]string{"lmdrive_get_api", "rebuild it against native/include/lmdrive.h"}},
		{"wrong ABI major", func(t *testing.T) string { return buildFakeEngine(t, "-DFAKE_ABI_MAJOR=2", "-DFAKE_ABI_MINOR=0") },
			[]string{"ABI 2.0", "speaks ABI 1.1", "make native"}},
		{"hole in the table", func(t *testing.T) string { return buildFakeEngine(t, "-DFAKE_NULL_POLL") },
			[]string{"has no poll"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			lib, err := OpenLibrary(path)
			if err == nil {
				lib.Close()
				t.Fatal("OpenLibrary succeeded; want an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file %s: %v", path, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNativeEngineGenerates(t *testing.T) {
	lib, err := OpenLibrary(buildFakeEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	eng, err := NewNativeEngine(lib, "fake", `{"mode":"ok"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if got := eng.Info(); got.Backend != "fake" || got.VocabSize != 4096 || len(got.EOSIDs) != 1 || got.EOSIDs[0] != 7 || got.ABI != "1.1" {
		t.Fatalf("info = %+v", got)
	}
	var toks []Token
	res, err := eng.Generate(context.Background(), Request{Prompt: []int32{1, 2, 3}, MaxNewTokens: 600},
		func(ts []Token) { toks = append(toks, ts...) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Finish != FinishLength || res.OutputTokens != 600 || len(toks) != 600 || res.PromptTokens != 3 {
		t.Fatalf("result %+v with %d tokens", res, len(toks))
	}
	for i, tk := range toks {
		if tk.Index != i || tk.ID != int32(1000+i) || tk.Logprob.Valid() {
			t.Fatalf("token %d = %+v", i, tk)
		}
		if i > 0 && tk.TimeNs < toks[i-1].TimeNs {
			t.Fatalf("token times go backwards at %d", i)
		}
	}
	if res.FirstNs != toks[0].TimeNs || res.LastNs != toks[599].TimeNs || res.SubmitNs > res.FirstNs {
		t.Fatalf("result times %+v disagree with token times", res)
	}
}

func TestNativeEngineErrors(t *testing.T) {
	lib, err := OpenLibrary(buildFakeEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	if _, err := NewNativeEngine(lib, "fake", `{"mode":"fail_load"}`); err == nil || !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("create error = %v", err)
	}
	eng, err := NewNativeEngine(lib, "fake", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Generate(context.Background(), Request{MaxNewTokens: 3}, nil); err == nil || !strings.Contains(err.Error(), "prompt is empty") {
		t.Fatalf("empty prompt: %v", err)
	}
	eng.Close()
	if _, err := eng.Generate(context.Background(), Request{Prompt: []int32{1}, MaxNewTokens: 3}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestNativeEngineCancel(t *testing.T) {
	lib, err := OpenLibrary(buildFakeEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	eng, err := NewNativeEngine(lib, "fake", `{"step_us":1000}`)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := eng.Generate(ctx, Request{Prompt: []int32{1}, MaxNewTokens: 100000}, func(ts []Token) {
		if n += len(ts); n >= 5 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Finish != FinishCancelled || res.OutputTokens >= 100000 {
		t.Fatalf("result %+v; want cancelled early", res)
	}
}
