// Package defaultdata embeds lmdrive's default tokenizer: Qwen2.5's
// tokenizer.json, gzip-compressed. PROVENANCE.md tells where it comes from
// and how to regenerate it.
package defaultdata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	_ "embed"

	// About 1.4 times the speed of compress/gzip on this file: it is
	// decompressed at every start.
	"github.com/klauspost/compress/gzip"
)

// Name describes the embedded tokenizer in reports.
const Name = "Qwen2.5 (built in)"

// SHA256 is the checksum of the uncompressed tokenizer.json, as recorded in
// PROVENANCE.md.
const SHA256 = "e0784cf75be2a8648596d239187be4b2f841b5fc1d90b0b72fe187bd8c4960d3"

//go:embed qwen2.5-tokenizer.json.gz
var compressed []byte

// TokenizerJSON returns the uncompressed tokenizer.json. Each call
// decompresses anew; callers keep the result as long as they need it. The
// checksum is not computed here (it costs as much as the decompression at
// every start): Verify checks it, and a test calls Verify.
func TokenizerJSON() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("open embedded tokenizer: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(12 << 20)
	if _, err := io.Copy(&buf, zr); err != nil {
		return nil, fmt.Errorf("decompress embedded tokenizer: %w", err)
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("decompress embedded tokenizer: %w", err)
	}
	return buf.Bytes(), nil
}

// Verify checks data, TokenizerJSON's result, against SHA256.
func Verify(data []byte) error {
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != SHA256 {
		return fmt.Errorf("embedded tokenizer checksum is %s, want %s", got, SHA256)
	}
	return nil
}
