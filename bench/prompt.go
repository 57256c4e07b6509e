package bench

import (
	"fmt"

	"github.com/lmdrive/lmdrive/driver/splitmix"
	"github.com/lmdrive/lmdrive/tokenize"
)

// Prompt is what an engine is handed: token IDs, their hash, and how they were made.
type Prompt struct {
	IDs    []int32 `json:"-"`
	Tokens int     `json:"tokens"`
	Hash   string  `json:"hash"`
	Source string  `json:"source"`
	// Tokenizer names the tokenizer that made the ids (backend, source, hash).
	Tokenizer string `json:"tokenizer,omitempty"`
}

// firstSpecialID is where Qwen2's special tokens begin (<|endoftext|>):
// random prompts stay below it so they never hold an EOS or control token.
const firstSpecialID = 151643

// RandomPrompt makes n token IDs in [0, min(vocab, 151643)) from seed.
func RandomPrompt(n, vocab int, seed uint64) (Prompt, error) {
	if n < 1 {
		return Prompt{}, fmt.Errorf("prompt tokens must be at least 1, not %d", n)
	}
	if vocab < 2 {
		return Prompt{}, fmt.Errorf("vocabulary of %d tokens is too small for a random prompt", vocab)
	}
	limit := uint64(min(vocab, firstSpecialID))
	ids := make([]int32, n)
	s := seed ^ 0x6c6d6472697665 // "lmdrive": keep prompt and weight streams apart
	for i := range ids {
		ids[i] = int32(splitmix.Mix(s+uint64(i)*splitmix.Golden) % limit)
	}
	return Prompt{IDs: ids, Tokens: n, Hash: tokenize.HashIDs(ids), Source: fmt.Sprintf("random token IDs, seed %d", seed)}, nil
}
