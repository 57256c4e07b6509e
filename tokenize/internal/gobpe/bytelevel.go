package gobpe

import "unicode/utf8"

// byteLevel is the reversible byte-to-character table of GPT-2 style
// byte-level BPE: printable Latin-1 bytes stand for themselves, the other
// bytes are moved to U+0100 and above so every token is printable text.
type byteLevel struct {
	toRune   [256]rune
	fromRune map[rune]byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{fromRune: make(map[rune]byte, 256)}
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = next
			next++
		}
		bl.toRune[b] = r
		bl.fromRune[r] = byte(b)
	}
	return bl
}

// encode maps raw bytes to their byte-level string.
func (bl *byteLevel) encode(raw []byte) string {
	buf := make([]byte, 0, 2*len(raw))
	for _, b := range raw {
		buf = utf8.AppendRune(buf, bl.toRune[b])
	}
	return string(buf)
}

// decode maps a byte-level token back to raw bytes. ok is false when some
// character is not in the table; Hugging Face's ByteLevel decoder then
// uses the token's own UTF-8 bytes, and so do we.
func (bl *byteLevel) decode(token string) (raw []byte, ok bool) {
	raw = make([]byte, 0, len(token))
	for _, r := range token {
		b, found := bl.fromRune[r]
		if !found {
			return []byte(token), false
		}
		raw = append(raw, b)
	}
	return raw, true
}
