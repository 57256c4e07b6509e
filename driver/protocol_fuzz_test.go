package driver

import (
	"math"
	"testing"
)

// FuzzDecodeEvent feeds the parent's decoder of runner events arbitrary
// lines: it never panics, and a token batch it accepts survives the
// runner's encoder unchanged (ids, times, bundles, log-probabilities).
// `make fuzz` runs it for a fixed time; plain `go test` runs the seeds.
func FuzzDecodeEvent(f *testing.F) {
	seeds := []string{
		`{"ev":"ready","info":{"engine":"ref","vocab_size":151936,"eos_ids":[151645]}}`,
		`{"ev":"tokens","tokens":{"i0":3,"ids":[1,2],"t":[10,20],"b":[1,1],"lp":[-0.5,null],"w":[[-1],[null]]}}`,
		`{"ev":"tokens","tokens":{"i0":0,"ids":[1,2],"t":[10],"b":[1,1]}}`,
		`{"ev":"result","result":{"finish":"length","output_tokens":2}}`,
		`{"ev":"error","phase":"load","error":"boom"}`,
		`{"ev":"tokens"}`, `{"ev":1}`, `[]`, `null`, `{"ev":"tokens","tokens":{"ids":[2147483648]}}`, ``, `{`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := decodeEvent(line)
		if err != nil || ev.Tokens == nil {
			return
		}
		toks, err := ev.Tokens.tokens()
		if err != nil {
			return
		}
		again, err := decodeEvent(newTokenBatch(toks).appendJSON(nil, ev.ID))
		if err != nil {
			t.Fatalf("the runner's encoding of %d accepted tokens does not decode: %v", len(toks), err)
		}
		back, err := again.Tokens.tokens()
		if err != nil || len(back) != len(toks) {
			t.Fatalf("round trip: %d tokens, then %d (%v)", len(toks), len(back), err)
		}
		for i := range toks {
			a, b := toks[i], back[i]
			if a.ID != b.ID || a.Index != b.Index || a.TimeNs != b.TimeNs || a.Bundle != b.Bundle || !sameLogprob(a.Logprob, b.Logprob) ||
				len(a.Watched) != len(b.Watched) {
				t.Fatalf("token %d: %+v became %+v", i, a, b)
			}
			for j := range a.Watched {
				if !sameLogprob(a.Watched[j], b.Watched[j]) {
					t.Fatalf("token %d watched %d: %v became %v", i, j, a.Watched[j], b.Watched[j])
				}
			}
		}
	})
}

// sameLogprob compares log-probabilities as the protocol carries them: a
// missing or infinite one travels as null.
func sameLogprob(a, b Logprob) bool {
	missing := func(l Logprob) bool { return math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) }
	if missing(a) || missing(b) {
		return missing(a) && missing(b)
	}
	return a == b
}
