package tokenize

import (
	"fmt"
	"strings"
)

// StreamDecoder turns generated ids into text one id at a time, for live
// output and early-stop forensics. A character split across tokens is held
// back until its last byte arrives, so no U+FFFD appears for text that is
// merely incomplete. Special tokens (such as <|im_end|>) are always shown,
// formatted by SpecialFormat.
//
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	tok     Tokenizer
	special map[int32]string
	// SpecialFormat is a fmt format with one %s for a special token's
	// content; the default "%s" shows the content as is.
	SpecialFormat string

	pending []int32 // ids whose text is not complete yet
	done    int     // pending[:done] has been emitted
}

// NewStreamDecoder returns a decoder over tok.
func NewStreamDecoder(tok Tokenizer) *StreamDecoder {
	d := &StreamDecoder{tok: tok, special: map[int32]string{}, SpecialFormat: "%s"}
	for _, a := range tok.AddedTokens() {
		if a.Special {
			d.special[a.ID] = a.Content
		}
	}
	return d
}

// Add takes the next id and returns the text that became complete with it,
// possibly "".
func (d *StreamDecoder) Add(id int32) (string, error) {
	if content, ok := d.special[id]; ok {
		tail, err := d.Flush()
		if err != nil {
			return "", err
		}
		return tail + fmt.Sprintf(d.SpecialFormat, content), nil
	}
	// Check the id alone first so that a bad id does not poison the
	// pending window.
	if _, err := d.tok.Decode([]int32{id}); err != nil {
		return "", err
	}
	d.pending = append(d.pending, id)
	prefix, err := d.tok.Decode(d.pending[:d.done])
	if err != nil {
		return "", err
	}
	full, err := d.tok.Decode(d.pending)
	if err != nil {
		return "", err
	}
	if len(full) <= len(prefix) || strings.HasSuffix(full, "\uFFFD") || !strings.HasPrefix(full, prefix) {
		// Incomplete character at the end: wait for more bytes.
		return "", nil
	}
	out := full[len(prefix):]
	// Keep only the last emitted id as context for the next one.
	d.pending = append(d.pending[:0], d.pending[len(d.pending)-1])
	d.done = 1
	return out, nil
}

// Flush returns whatever is held back, with U+FFFD for bytes that never
// formed a character, and starts afresh.
func (d *StreamDecoder) Flush() (string, error) {
	if len(d.pending) == d.done {
		d.pending, d.done = d.pending[:0], 0
		return "", nil
	}
	prefix, err := d.tok.Decode(d.pending[:d.done])
	if err != nil {
		return "", err
	}
	full, err := d.tok.Decode(d.pending)
	if err != nil {
		return "", err
	}
	d.pending, d.done = d.pending[:0], 0
	if !strings.HasPrefix(full, prefix) {
		return full, nil
	}
	return full[len(prefix):], nil
}
