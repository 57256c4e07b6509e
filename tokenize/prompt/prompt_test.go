package prompt

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lmdrive/lmdrive/tokenize"
)

var (
	sharedOnce sync.Once
	sharedTok  tokenize.Tokenizer
	sharedErr  error
)

// builtin returns one built-in tokenizer for all tests (opening takes a few
// hundred milliseconds). The pure-Go backend keeps the tests cgo-free.
func builtin(t *testing.T) tokenize.Tokenizer {
	t.Helper()
	sharedOnce.Do(func() { sharedTok, sharedErr = tokenize.Open("", tokenize.BackendGo) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedTok
}

func TestExactLengthAndDeterminism(t *testing.T) {
	tok := builtin(t)
	for _, mix := range Mixes {
		for _, n := range []int{1, 37, 3000} {
			p, err := Build(tok, Spec{Tokens: n, Seed: 7, Mix: mix})
			if err != nil {
				t.Fatalf("%s/%d: %v", mix, n, err)
			}
			if len(p.IDs) != n {
				t.Errorf("%s/%d: got %d ids", mix, n, len(p.IDs))
			}
			again, _ := Build(tok, Spec{Tokens: n, Seed: 7, Mix: mix})
			if again.Hash != p.Hash || again.Text != p.Text {
				t.Errorf("%s/%d: same spec built a different prompt", mix, n)
			}
			if p.Hash != tokenize.HashIDs(p.IDs) {
				t.Errorf("%s/%d: Hash does not match the ids", mix, n)
			}
			if !strings.Contains(p.Description, mix) || !strings.Contains(p.Description, "seed 7") {
				t.Errorf("Description %q lacks the mix or the seed", p.Description)
			}
		}
	}
}

func TestSeedsAndPrefixes(t *testing.T) {
	tok := builtin(t)
	a, _ := Build(tok, Spec{Tokens: 500, Seed: 1})
	b, _ := Build(tok, Spec{Tokens: 500, Seed: 2})
	if a.Hash == b.Hash {
		t.Error("seeds 1 and 2 gave the same prompt")
	}
	long, _ := Build(tok, Spec{Tokens: 2000, Seed: 1})
	if !slices.Equal(long.IDs[:500], a.IDs) {
		t.Error("a shorter prompt is not a prefix of a longer one with the same seed")
	}
}

func TestMixContents(t *testing.T) {
	tok := builtin(t)
	zh, _ := Build(tok, Spec{Tokens: 400, Seed: 3, Mix: MixChinese})
	if !strings.ContainsAny(zh.Text, "的了在") {
		t.Errorf("Chinese mix has no Chinese: %.80q", zh.Text)
	}
	code, _ := Build(tok, Spec{Tokens: 400, Seed: 3, Mix: MixCode})
	if !strings.Contains(code.Text, "func ") && !strings.Contains(code.Text, "def ") {
		t.Errorf("code mix has no code: %.80q", code.Text)
	}
}

func TestChatTemplate(t *testing.T) {
	tok := builtin(t)
	p, err := Build(tok, Spec{Tokens: 1000, Seed: 1, ChatTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IDs) != 1000 || p.TemplateTokens == 0 {
		t.Fatalf("%d ids, %d template tokens", len(p.IDs), p.TemplateTokens)
	}
	if !strings.HasPrefix(p.Text, "<|im_start|>system\n") || !strings.HasSuffix(p.Text, "<|im_end|>\n<|im_start|>assistant\n") {
		t.Errorf("text is not in the ChatML template: %.60q ... %q", p.Text, p.Text[len(p.Text)-40:])
	}
	if !strings.Contains(p.Description, "ChatML") {
		t.Errorf("Description %q does not mention the template", p.Description)
	}
	if _, err := Build(tok, Spec{Tokens: p.TemplateTokens, ChatTemplate: true}); err == nil {
		t.Error("a prompt with no room for text was built")
	}
}

func TestTextFile(t *testing.T) {
	tok := builtin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.txt")
	text := strings.Repeat("A user's own words, repeated for length. ", 50)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Build(tok, Spec{TextFile: path})
	if err != nil || !slices.Equal(whole.IDs, all) {
		t.Fatalf("whole file: %v", err)
	}
	cut, err := Build(tok, Spec{TextFile: path, Tokens: 100})
	if err != nil || !slices.Equal(cut.IDs, all[:100]) {
		t.Fatalf("cut file: %v", err)
	}
	if !strings.Contains(cut.Description, "mine.txt") {
		t.Errorf("Description %q does not name the file", cut.Description)
	}
	if _, err := Build(tok, Spec{TextFile: path, Tokens: len(all) + 1}); err == nil {
		t.Error("a file shorter than the request was accepted")
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("\xff\xfe"), 0o644)
	for _, spec := range []Spec{
		{TextFile: filepath.Join(dir, "missing.txt")},
		{TextFile: bad},
		{Tokens: 10, Mix: "klingon"},
		{Tokens: 0},
		{Tokens: -1},
		{Tokens: MaxTokens + 1},
	} {
		if _, err := Build(tok, spec); err == nil {
			t.Errorf("Build(%+v) succeeded", spec)
		}
	}
	if _, err := Build(nil, Spec{Tokens: 1}); err == nil {
		t.Error("Build without a tokenizer succeeded")
	}
}

func TestTwentyThousand(t *testing.T) {
	tok := builtin(t)
	p, err := Build(tok, Spec{Tokens: 20000, Seed: 1, Mix: MixMixed, ChatTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IDs) != 20000 {
		t.Fatalf("got %d ids", len(p.IDs))
	}
}
