package eos

import (
	"regexp"
	"strings"
)

// A known log line that explains or limits a generation's length. The
// wordings come from the engines' sources as catalogued in the project's
// research notes; each is matched loosely (case-insensitive regexp).
type logPattern struct {
	Name    string
	Meaning string
	re      *regexp.Regexp
}

var knownLogLines = []logPattern{
	{"session_len_clamp", "TurboMind truncated max_new_tokens to fit session_len", regexp.MustCompile(`(?i)exceeds .?session_len.?.*max_new_tokens is truncated`)},
	{"truncate_max_new", "LMDeploy (≤0.7) truncated max_new_tokens in Python", regexp.MustCompile(`(?i)truncate max_new_tokens to`)},
	{"run_out_of_tokens", "LMDeploy had no room left in the session and returned nothing", regexp.MustCompile(`(?i)run out of tokens`)},
	{"kv_session_len", "TurboMind lowered session_len to what the KV cache blocks hold", regexp.MustCompile(`(?i)(no enough blocks for .?session_len|session_len.? truncated to \d+)`)},
	{"trt_output_clamp", "TensorRT-LLM clamped the requested output tokens to max_seq_len", regexp.MustCompile(`(?i)number of requested output tokens is changed|exceeds maximum sequence length`)},
	{"vllm_capacity", "vLLM could never fit the prompt in the KV cache", regexp.MustCompile(`(?i)exceeds the capacity of block_manager`)},
	{"hf_default_max_length", "transformers fell back to max_length=20", regexp.MustCompile("(?i)model-agnostic default .?max_length")},
	{"lmdeploy_request_config", "LMDeploy logged the request's effective max_new_tokens", regexp.MustCompile(`(?i)input_tokens=\d+.*max_new_tokens=\d+`)},
	{"llamacpp_context", "llama.cpp hit the slot's context size", regexp.MustCompile(`(?i)context shift|n_ctx_train`)},
}

// LogHit is one log line that matched a known pattern.
type LogHit struct {
	Pattern string `json:"pattern"`
	Meaning string `json:"meaning"`
	Line    string `json:"line"`
}

// ScanLog returns the lines of an engine's log that match known warnings.
func ScanLog(log string) []LogHit {
	var hits []LogHit
	for _, line := range strings.Split(log, "\n") {
		for _, p := range knownLogLines {
			if p.re.MatchString(line) {
				hits = append(hits, LogHit{Pattern: p.Name, Meaning: p.Meaning, Line: strings.TrimSpace(line)})
			}
		}
	}
	return hits
}
