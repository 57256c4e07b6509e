package bench

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lmdrive/lmdrive/tokenize"
)

// fakeVocabTokenizer is a tokenizer that only knows its vocabulary size.
type fakeVocabTokenizer struct {
	tokenize.Tokenizer
	vocab int
}

func (f fakeVocabTokenizer) VocabSize() int      { return f.vocab }
func (f fakeVocabTokenizer) Info() tokenize.Info { return tokenize.Info{Source: "vocab.json"} }

func TestPreflightLengths(t *testing.T) {
	cases := []struct {
		pre      Preflight
		err      string
		warnings string
	}{
		{Preflight{Engine: "ref", Model: "random:tiny", PromptTokens: 40000, MaxNew: 10},
			"--prompt-tokens 40000 does not fit: the model takes at most 32767 prompt tokens (max_position_embeddings of random:tiny); give --prompt-tokens 32767 or less, or raise the ref engine's limit with --engine-config '{\"max_seq_len\": 40010}'", ""},
		{Preflight{Engine: "ref", Model: "random:tiny", EngineConfig: json.RawMessage(`{"max_seq_len": 100}`), PromptTokens: 200, MaxNew: 10},
			"at most 99 prompt tokens (max_seq_len in --engine-config)", ""},
		{Preflight{Engine: "ref", Model: "random:tiny", EngineConfig: json.RawMessage(`{"max_seq_len": 50000}`), PromptTokens: 40000, MaxNew: 10}, "", ""},
		{Preflight{Engine: "ref", Model: "random:tiny", PromptTokens: 30000, MaxNew: 5000}, "",
			"30000 prompt + 5000 new tokens exceed the limit of 32768 (max_position_embeddings of random:tiny): generation will stop after 2768 tokens"},
		{Preflight{Engine: "trtllm", Model: "../testdata/eos/trtllm-engine", PromptTokens: 10241, MaxNew: 1},
			"at most 10240 prompt tokens (max_input_len in the build_config of ../testdata/eos/trtllm-engine/config.json)", ""},
		{Preflight{Engine: "ref", Model: "random:nope", PromptTokens: 10}, `unknown preset "nope"`, ""},
		{Preflight{Engine: "trtllm", Model: "an-engine-name", PromptTokens: 1 << 20}, "", ""},
		{Preflight{Engine: "ref", Model: "random:tiny", PromptTokens: 16, Tokenizer: fakeVocabTokenizer{vocab: 30522}}, "",
			"the tokenizer (vocab.json) has 30522 tokens, 20% of the model's 151936 (random:tiny): it is probably another model's tokenizer"},
		{Preflight{Engine: "ref", Model: "random:tiny", PromptTokens: 16, Tokenizer: fakeVocabTokenizer{vocab: 152000}}, "",
			"has 152000 tokens but the model (random:tiny) only 151936 rows of vocabulary: a prompt id of 151936 or more will be refused"},
		{Preflight{Engine: "ref", Model: "random:tiny", PromptTokens: 16, Tokenizer: fakeVocabTokenizer{vocab: 151665}}, "", ""},
	}
	for i, tc := range cases {
		warnings, err := tc.pre.Check()
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("case %d: error %v; want %q", i, err, tc.err)
		}
		if got := strings.Join(warnings, "\n"); tc.warnings == "" && got != "" || !strings.Contains(got, tc.warnings) {
			t.Errorf("case %d: warnings %q; want %q", i, got, tc.warnings)
		}
	}
}
