package tokenize

import (
	"strings"
	"testing"
)

// streamAll feeds ids one by one and returns the pieces, flush included.
func streamAll(t *testing.T, d *StreamDecoder, ids []int32) []string {
	t.Helper()
	var pieces []string
	for _, id := range ids {
		s, err := d.Add(id)
		if err != nil {
			t.Fatalf("Add(%d): %v", id, err)
		}
		pieces = append(pieces, s)
	}
	tail, err := d.Flush()
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return append(pieces, tail)
}

func TestStreamDecoder(t *testing.T) {
	for _, backend := range Backends() {
		t.Run(backend, func(t *testing.T) {
			tok := openShared(t, backend)
			text := "Streaming 你好, 👨‍👩‍👧 and ünïcödé text.<|im_end|>\n"
			ids, err := tok.Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			pieces := streamAll(t, NewStreamDecoder(tok), ids)
			if got := strings.Join(pieces, ""); got != text {
				t.Errorf("joined stream = %q, want %q", got, text)
			}
			for i, p := range pieces {
				if strings.ContainsRune(p, '\uFFFD') {
					t.Errorf("piece %d = %q holds an incomplete character", i, p)
				}
			}
		})
	}
}

func TestStreamDecoderHoldsIncompleteTail(t *testing.T) {
	g := loadGolden(t)
	tok := openShared(t, BackendGo)
	var byteIDs []int32 // the three byte tokens of 你 (E4 BD A0)
	for _, c := range g.Decode {
		if c.Name == "cjk-bytes" {
			byteIDs = c.IDs[:3]
		}
	}
	if byteIDs == nil {
		t.Fatal("golden file lacks the cjk-bytes case")
	}
	d := NewStreamDecoder(tok)
	for i, id := range byteIDs {
		s, err := d.Add(id)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if i == 2 {
			want = "你"
		}
		if s != want {
			t.Errorf("after byte %d: got %q, want %q", i+1, s, want)
		}
	}
	// A truncated character at the end comes out as U+FFFD on Flush.
	if s, _ := d.Add(byteIDs[0]); s != "" {
		t.Errorf("lone lead byte emitted %q", s)
	}
	if s, _ := d.Flush(); s != "\uFFFD" {
		t.Errorf("Flush = %q, want U+FFFD", s)
	}
}

func TestStreamDecoderSpecialTokens(t *testing.T) {
	tok := openShared(t, BackendGo)
	d := NewStreamDecoder(tok)
	d.SpecialFormat = "[%s]"
	ids, _ := tok.Encode("hi<|im_end|><|endoftext|><tool_call>")
	got := strings.Join(streamAll(t, d, ids), "")
	// <tool_call> is an added token but not a special one.
	if want := "hi[<|im_end|>][<|endoftext|>]<tool_call>"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := d.Add(-5); err == nil {
		t.Error("Add(-5) succeeded")
	}
}
