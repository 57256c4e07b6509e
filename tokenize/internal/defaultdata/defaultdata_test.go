package defaultdata

import (
	"bytes"
	"testing"
)

func TestTokenizerJSON(t *testing.T) {
	data, err := TokenizerJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"<|im_end|>"`)) || bytes.Contains(data, []byte(`"<think>"`)) {
		t.Error("embedded tokenizer is not Qwen2.5's (Qwen3's <think> present or <|im_end|> missing)")
	}
}
