package tokenize_test

import (
	"os"
	"testing"

	"github.com/lmdrive/lmdrive/tokenize"
	"github.com/lmdrive/lmdrive/tokenize/prompt"
)

// benchText is the text BenchmarkEncode encodes: the file named by
// LMDRIVE_BENCH_TEXT (tokenize/scripts/bench-encode.sh sets it so that the
// Python timing reads the same bytes), or a synthesized 20,000-token mixed
// prompt.
func benchText(b *testing.B, tok tokenize.Tokenizer) string {
	b.Helper()
	if path := os.Getenv("LMDRIVE_BENCH_TEXT"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return string(data)
	}
	p, err := prompt.Build(tok, prompt.Spec{Tokens: 20000, Seed: 1, Mix: prompt.MixMixed})
	if err != nil {
		b.Fatal(err)
	}
	return p.Text
}

func BenchmarkEncode(b *testing.B) {
	for _, backend := range tokenize.Backends() {
		b.Run(backend, func(b *testing.B) {
			tok, err := tokenize.Open("", backend)
			if err != nil {
				b.Fatal(err)
			}
			defer tok.Close()
			text := benchText(b, tok)
			ids, err := tok.Encode(text)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(ids)), "tokens")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, backend := range tokenize.Backends() {
		b.Run(backend, func(b *testing.B) {
			tok, err := tokenize.Open("", backend)
			if err != nil {
				b.Fatal(err)
			}
			defer tok.Close()
			ids, err := tok.Encode(benchText(b, tok))
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := tok.Decode(ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
