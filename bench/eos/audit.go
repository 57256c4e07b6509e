// Package eos explains why a generation stopped before max_new_tokens.
//
// It works in four steps, each usable alone: a static audit of every token
// ID that can end a request and every length limit, read from the model's
// and the engine's config files (Audit); the engine's effective config and
// log, matched against known warnings (ScanLog); per-step records of an
// instrumented run (Steps); and a decision tree whose first matching rule
// names the cause, with all the evidence (Decide).
package eos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// StopID is one token ID that can end a request, and everywhere it comes from.
type StopID struct {
	ID      int32    `json:"id"`
	Piece   string   `json:"piece,omitempty"`
	Sources []string `json:"sources"`
}

// Limit is one length limit that applies to a request.
type Limit struct {
	Name   string `json:"name"`   // max_seq_len, session_len, max_position_embeddings…
	Value  int    `json:"value"`  // in tokens (prompt + generated)
	Source string `json:"source"` // file or engine that set it
}

// Audit is what the config files say before anything runs.
type Audit struct {
	Universe     []StopID `json:"stop_universe"`
	Limits       []Limit  `json:"limits"`
	PromptTokens int      `json:"prompt_tokens"`
	Requested    int      `json:"max_new_requested"`
	// PredictedCap is the most tokens the request can produce under the
	// tightest limit; Binding names that limit ("" when the request fits).
	PredictedCap int      `json:"predicted_cap"`
	Binding      string   `json:"binding_limit,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
	Read         []string `json:"files_read"`
}

// AuditInput names what to read. Every field is optional.
type AuditInput struct {
	ModelDir     string  // Hugging Face folder: config.json, generation_config.json, tokenizer_config.json, tokenizer.json
	EngineConfig string  // an engine's config: TensorRT-LLM engine config.json, LMDeploy config.yaml / config.ini, or a folder holding one
	EngineEOS    []int32 // EOS ids the engine reported (lmd_info)
	EngineMaxSeq int     // max_seq_len the engine reported (lmd_info), 0 if none
	UserStops    [][]int32
	PromptTokens int
	MaxNew       int
}

// RunAudit reads the files and predicts the cap. A missing optional file is
// skipped; a file that exists but cannot be parsed is an error.
func RunAudit(in AuditInput) (Audit, error) {
	a := Audit{PromptTokens: in.PromptTokens, Requested: in.MaxNew}
	u := universe{}
	pieces := map[int32]string{}
	if in.ModelDir != "" {
		if err := a.readModelDir(in.ModelDir, u, pieces); err != nil {
			return a, err
		}
	}
	if in.EngineConfig != "" {
		if err := a.readEngineConfig(in.EngineConfig); err != nil {
			return a, err
		}
	}
	for _, id := range in.EngineEOS {
		u.add(id, "engine eos")
	}
	if in.EngineMaxSeq > 0 {
		a.Limits = append(a.Limits, Limit{Name: "max_seq_len", Value: in.EngineMaxSeq, Source: "engine"})
	}
	for i, s := range in.UserStops {
		if len(s) == 1 {
			u.add(s[0], fmt.Sprintf("request stop sequence %d", i))
		}
	}
	a.Universe = u.list(pieces)
	a.predict()
	return a, nil
}

type universe map[int32][]string

func (u universe) add(id int32, source string) {
	if !slices.Contains(u[id], source) {
		u[id] = append(u[id], source)
	}
}

func (u universe) list(pieces map[int32]string) []StopID {
	out := make([]StopID, 0, len(u))
	for id, src := range u {
		out = append(out, StopID{ID: id, Sources: src, Piece: pieces[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Sources returns where id comes from in the universe, or nil.
func (a Audit) Sources(id int32) []string {
	for _, s := range a.Universe {
		if s.ID == id {
			return s.Sources
		}
	}
	return nil
}

func (a *Audit) predict() {
	a.PredictedCap = a.Requested
	for _, l := range a.Limits {
		if room := l.Value - a.PromptTokens; room < a.PredictedCap {
			a.PredictedCap, a.Binding = max(room, 0), fmt.Sprintf("%s=%d (%s)", l.Name, l.Value, l.Source)
		}
	}
	if a.Binding != "" {
		a.Warnings = append(a.Warnings, fmt.Sprintf("at most %d of the %d requested tokens fit: %d prompt tokens + %d > %s",
			a.PredictedCap, a.Requested, a.PromptTokens, a.Requested, a.Binding))
	}
}

// readModelDir reads the Hugging Face files that define EOS ids and length limits.
func (a *Audit) readModelDir(dir string, u universe, pieces map[int32]string) error {
	var cfg struct {
		EOS    json.RawMessage `json:"eos_token_id"`
		MaxPos int             `json:"max_position_embeddings"`
	}
	if ok, err := readJSON(filepath.Join(dir, "config.json"), &cfg, &a.Read); err != nil {
		return err
	} else if ok {
		for _, id := range idList(cfg.EOS) {
			u.add(id, "config.json eos_token_id")
		}
		if cfg.MaxPos > 0 {
			a.Limits = append(a.Limits, Limit{Name: "max_position_embeddings", Value: cfg.MaxPos, Source: "config.json"})
		}
	}
	var gen struct {
		EOS       json.RawMessage `json:"eos_token_id"`
		Pad       json.RawMessage `json:"pad_token_id"`
		MaxNew    int             `json:"max_new_tokens"`
		MaxLength int             `json:"max_length"`
	}
	if ok, err := readJSON(filepath.Join(dir, "generation_config.json"), &gen, &a.Read); err != nil {
		return err
	} else if ok {
		for _, id := range idList(gen.EOS) {
			u.add(id, "generation_config.json eos_token_id")
		}
		if gen.MaxNew > 0 && gen.MaxNew < a.Requested {
			a.Warnings = append(a.Warnings, fmt.Sprintf("generation_config.json sets max_new_tokens=%d: engines that read it (transformers, vLLM with --generation-config auto) cap there unless told otherwise", gen.MaxNew))
		}
	}
	// tokenizer.json's added tokens give names to ids.
	var tj struct {
		Added []struct {
			ID      int32  `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	if ok, err := readJSON(filepath.Join(dir, "tokenizer.json"), &tj, &a.Read); err != nil {
		return err
	} else if ok {
		for _, t := range tj.Added {
			pieces[t.ID] = t.Content
		}
	}
	var tc struct {
		EOS          json.RawMessage `json:"eos_token"`
		Pad          json.RawMessage `json:"pad_token"`
		ChatTemplate string          `json:"chat_template"`
		Added        map[string]struct {
			Content string `json:"content"`
		} `json:"added_tokens_decoder"`
	}
	if ok, err := readJSON(filepath.Join(dir, "tokenizer_config.json"), &tc, &a.Read); err != nil {
		return err
	} else if ok {
		byName := map[string]int32{}
		for k, v := range tc.Added {
			if id, err := strconv.Atoi(k); err == nil {
				pieces[int32(id)] = v.Content
				byName[v.Content] = int32(id)
			}
		}
		for id, content := range pieces {
			byName[content] = id
		}
		if name := tokenName(tc.EOS); name != "" {
			if id, ok := byName[name]; ok {
				u.add(id, "tokenizer_config.json eos_token")
			} else {
				a.Warnings = append(a.Warnings, fmt.Sprintf("tokenizer_config.json eos_token %q is not an added token", name))
			}
		}
		// ChatML closes every turn with <|im_end|>: engines that apply the
		// template use it as a stop word.
		if strings.Contains(tc.ChatTemplate, "<|im_end|>") {
			if id, ok := byName["<|im_end|>"]; ok {
				u.add(id, "chat template stop word")
			}
		}
	}
	return nil
}

// readEngineConfig reads the length limits of an engine's own config.
func (a *Audit) readEngineConfig(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		for _, name := range []string{"config.json", "config.yaml", filepath.Join("triton_models", "weights", "config.yaml"),
			filepath.Join("triton_models", "weights", "config.ini"), "config.ini"} {
			if _, err := os.Stat(filepath.Join(path, name)); err == nil {
				path = filepath.Join(path, name)
				break
			}
		}
	}
	switch {
	case strings.HasSuffix(path, ".json"):
		var trt struct {
			Build struct {
				MaxInputLen int `json:"max_input_len"`
				MaxSeqLen   int `json:"max_seq_len"`
				MaxNumToks  int `json:"max_num_tokens"`
			} `json:"build_config"`
		}
		ok, err := readJSON(path, &trt, &a.Read)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("engine config %s does not exist", path)
		}
		if trt.Build.MaxSeqLen > 0 {
			a.Limits = append(a.Limits, Limit{Name: "max_seq_len", Value: trt.Build.MaxSeqLen, Source: path + " build_config"})
		}
		if trt.Build.MaxInputLen > 0 && a.PromptTokens > trt.Build.MaxInputLen {
			a.Warnings = append(a.Warnings, fmt.Sprintf("the prompt (%d tokens) exceeds max_input_len=%d of %s: TensorRT-LLM rejects it", a.PromptTokens, trt.Build.MaxInputLen, path))
		}
	case strings.HasSuffix(path, ".yaml"), strings.HasSuffix(path, ".ini"):
		kv, err := readKeyValues(path)
		if err != nil {
			return err
		}
		a.Read = append(a.Read, path)
		if v, ok := kv["session_len"]; ok {
			a.Limits = append(a.Limits, Limit{Name: "session_len", Value: v, Source: path})
		}
		if v, ok := kv["cache_max_entry_count"]; ok && v >= 1 {
			block := kv["cache_block_seq_len"]
			if block == 0 {
				block = 64
			}
			a.Limits = append(a.Limits, Limit{Name: "kv_session_len", Value: v * block, Source: fmt.Sprintf("%s: cache_max_entry_count=%d is a block count (≥ 1), × cache_block_seq_len=%d", path, v, block)})
		}
	default:
		return fmt.Errorf("engine config %s: expected a .json (TensorRT-LLM), .yaml or .ini (LMDeploy) file", path)
	}
	return nil
}

// readKeyValues reads "key: value" or "key = value" lines with integer
// values, ignoring sections and everything else.
func readKeyValues(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			k, v, ok = strings.Cut(line, "=")
		}
		if !ok {
			continue
		}
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n == float64(int(n)) {
			out[strings.TrimSpace(k)] = int(n)
		}
	}
	return out, sc.Err()
}

func readJSON(path string, v any, read *[]string) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	*read = append(*read, path)
	return true, nil
}

// idList reads an id or a list of ids.
func idList(raw json.RawMessage) []int32 {
	var one int32
	if json.Unmarshal(raw, &one) == nil && len(raw) > 0 && raw[0] != 'n' {
		return []int32{one}
	}
	var many []int32
	json.Unmarshal(raw, &many)
	return many
}

// tokenName reads "eos_token": "<|im_end|>" or {"content": "<|im_end|>"}.
func tokenName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	json.Unmarshal(raw, &o)
	return o.Content
}
