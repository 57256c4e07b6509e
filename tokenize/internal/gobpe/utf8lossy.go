package gobpe

import "unicode/utf8"

// appendLossy appends b to dst as valid UTF-8, replacing each maximal
// invalid subpart with one U+FFFD. This is the rule of Rust's
// String::from_utf8_lossy (and of the Unicode standard's recommended
// practice), which Hugging Face applies when it decodes byte-level tokens.
// Go's own conversions differ: they replace every invalid byte, or every
// run of invalid bytes, with one U+FFFD.
func appendLossy(dst []byte, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		n := validPrefix(b[i:])
		if n > 0 {
			dst = append(dst, b[i:i+n]...)
			i += n
			continue
		}
		dst = append(dst, "\uFFFD"...)
		i += invalidSubpart(b[i:])
	}
	return dst
}

// validPrefix returns the length of the well-formed multi-byte sequence at
// the start of b, or 0 when there is none.
func validPrefix(b []byte) int {
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size <= 1 {
		return 0
	}
	return size
}

// invalidSubpart returns how many bytes at the start of b form one maximal
// invalid subpart: a lead byte followed by the continuation bytes that were
// still acceptable for it, or a single byte that cannot start a sequence.
func invalidSubpart(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		need = 2
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead == 0xF4:
		need, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if c < lo || c > hi {
			break
		}
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}
