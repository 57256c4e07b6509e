package eos

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lmdrive/lmdrive/driver"
)

// Causes, in the order the decision tree tries them.
const (
	CauseOK                  = "OK"
	CauseAborted             = "ABORTED"
	CauseDefaultCap          = "DEFAULT_CAP"
	CauseConfigNotApplied    = "CONFIG_NOT_APPLIED"
	CauseCountingArtifact    = "COUNTING_ARTIFACT"
	CauseContextClamp        = "CONTEXT_CLAMP"
	CauseStopSetNotCleared   = "STOP_SET_NOT_CLEARED"
	CauseModelEOS            = "MODEL_EOS"
	CauseHiddenEndID         = "HIDDEN_END_ID"
	CauseStopString          = "STOP_STRING"
	CausePromptContamination = "PROMPT_CONTAMINATION"
	CauseUnexplained         = "UNEXPLAINED"
)

// knownDefaults are engines' default output caps: a run stopping at one of
// them (±1) suggests the request's own cap never reached the engine.
var knownDefaults = map[int]string{
	512: "LMDeploy GenerationConfig.max_new_tokens", 2048: "Qwen2.5 base generation_config max_new_tokens",
	32: "TensorRT-LLM SamplingParams.max_tokens", 20: "transformers max_length", 16: "vLLM SamplingParams.max_tokens",
}

// Run is one generation as the engine reported it, with what was asked.
type Run struct {
	Requested     int
	IgnoreEOS     bool
	MinNew        int
	StopSequences [][]int32
	Prompt        []int32
	WatchIDs      []int32
	Tokens        []driver.Token
	Result        driver.Result
	Log           []LogHit
}

// Verdict names the cause of a stop, with the evidence behind it.
type Verdict struct {
	Early    bool     `json:"early"`
	Cause    string   `json:"cause"`
	Detail   string   `json:"detail"`
	Evidence []string `json:"evidence"`
	Next     string   `json:"next"`
}

// Decide applies the decision tree: the first rule that matches names the
// cause; evidence from every check that found something is listed.
func Decide(r Run, a Audit, pieces func(int32) string) Verdict {
	out := len(r.Tokens)
	res := r.Result
	v := Verdict{Early: out < r.Requested}
	ev := func(format string, args ...any) { v.Evidence = append(v.Evidence, fmt.Sprintf(format, args...)) }

	ev("generated %d of %d requested; engine finish %q (raw status %d %s)", out, r.Requested, res.Finish, res.RawStatus, res.RawStatusText)
	for _, h := range r.Log {
		ev("engine log: %q — %s", h.Line, h.Meaning)
	}
	for _, w := range a.Warnings {
		ev("audit: %s", w)
	}
	contaminated := promptStopIDs(r.Prompt, a, res.StopIDs)
	if len(contaminated) > 0 {
		ev("the prompt holds stop/EOS ids: %s", strings.Join(contaminated, ", "))
	}
	var last int32 = -1
	if out > 0 {
		last = r.Tokens[out-1].ID
		ev("last token %d%s; active stop ids %v (ignore_eos applied: %v)", last, quote(pieces, last), res.StopIDs, res.IgnoreEOSApplied)
	}
	if p, ok := eosProbability(r, out-1); ok {
		ev("P(stop ids) at the last step: %.3g (summed over the watched stop universe)", p)
	}

	switch {
	case !v.Early:
		v.Cause, v.Detail, v.Next = CauseOK, "the run produced every requested token", "nothing to do"
	case res.Finish == driver.FinishCancelled || res.Finish == driver.FinishTimeout || res.Finish == driver.FinishError:
		v.Cause = CauseAborted
		v.Detail = fmt.Sprintf("the engine ended the request with %s (%s)", res.Finish, strings.TrimSpace(res.RawStatusText+" "+res.Detail))
		v.Next = "look at the engine log and the error; a cancel comes from the caller or a timeout"
	case res.MaxNewRequested > 0 && res.MaxNewRequested != r.Requested && knownDefaults[res.MaxNewRequested] != "":
		v.Cause = CauseDefaultCap
		v.Detail = fmt.Sprintf("the engine worked with max_new_tokens=%d, the default of %s, not the requested %d", res.MaxNewRequested, knownDefaults[res.MaxNewRequested], r.Requested)
		v.Next = "pass the generation config to the call that reaches the engine"
	case res.MaxNewRequested > 0 && res.MaxNewRequested != r.Requested:
		v.Cause = CauseConfigNotApplied
		v.Detail = fmt.Sprintf("the engine saw max_new_tokens=%d, not the requested %d", res.MaxNewRequested, r.Requested)
		v.Next = "check how the request's length reaches the engine"
	case r.IgnoreEOS && !res.IgnoreEOSApplied:
		v.Cause = CauseConfigNotApplied
		v.Detail = "ignore_eos was requested but the engine did not apply it"
		v.Next = "check how ignore_eos reaches the engine (a flag lost or mistyped at the boundary)"
	case res.OutputTokens != out:
		v.Cause = CauseCountingArtifact
		v.Detail = fmt.Sprintf("the engine counts %d tokens but %d were received", res.OutputTokens, out)
		v.Next = "count token ids as received, never re-tokenized text or stream chunks"
	case clampLimit(r, a) != "":
		v.Cause = CauseContextClamp
		v.Detail = fmt.Sprintf("a length limit ended the run: %s (prompt %d + generated %d)", clampLimit(r, a), r.promptTokens(), out)
		v.Next = "raise the limit (max_seq_len / session_len / KV cache size) or shorten the prompt"
	case last >= 0 && slices.Contains(res.StopIDs, last) && (res.Finish == driver.FinishEOS || res.Finish == driver.FinishStop):
		src := sourcesOf(last, r, a)
		if r.IgnoreEOS {
			v.Cause = CauseStopSetNotCleared
			v.Detail = fmt.Sprintf("token %d%s ended the run although ignore_eos was set: it stayed in the engine's stop set (from %s)", last, quote(pieces, last), src)
			v.Next = "remove that id from the stop ids the driver passes (template stop words, generation_config eos), or force length with min_new_tokens"
		} else {
			v.Cause = CauseModelEOS
			v.Detail = fmt.Sprintf("the model generated %d%s (from %s) and EOS stops were on", last, quote(pieces, last), src)
			v.Next = "set ignore_eos to measure the full length; run with --control to see where the model wants to stop"
		}
	case res.Finish == driver.FinishEOS:
		v.Cause = CauseHiddenEndID
		v.Detail = fmt.Sprintf("the engine reports an EOS stop on %d%s, which is not in the stop set it reported %v", last, quote(pieces, last), res.StopIDs)
		v.Next = "the engine's real stop set differs from what it reports: read its effective config"
	case res.Finish == driver.FinishStop:
		v.Cause = CauseStopString
		seq := "?"
		if i := res.StopSequence; i >= 0 && i < len(r.StopSequences) {
			seq = fmt.Sprint(r.StopSequences[i])
		}
		v.Detail = fmt.Sprintf("stop sequence %d %s matched the output's tail", res.StopSequence, seq)
		v.Next = "drop the stop sequence if the full length is wanted"
	case len(contaminated) > 0:
		v.Cause = CausePromptContamination
		v.Detail = "the prompt holds EOS or pad ids, and nothing else explains the stop"
		v.Next = "build prompts as unpadded 1-D token lists without special ids (a padded batch puts pad = EOS into the prompt)"
	default:
		v.Cause = CauseUnexplained
		v.Detail = "no rule matched"
		v.Next = "inspect the last steps below, the engine log and its effective config"
	}
	return v
}

// promptTokens is the prompt's length: the ids when known, else the
// engine's own count (runs read back from results files keep no ids).
func (r Run) promptTokens() int {
	if len(r.Prompt) > 0 {
		return len(r.Prompt)
	}
	return r.Result.PromptTokens
}

// clampLimit names the limit that ended the run, or "".
func clampLimit(r Run, a Audit) string {
	res, out := r.Result, len(r.Tokens)
	if res.Finish == driver.FinishLimit || (res.MaxNewEffective > 0 && res.MaxNewEffective < r.Requested && out == res.MaxNewEffective) {
		if res.LimitSource != "" {
			return res.LimitSource
		}
		return fmt.Sprintf("effective max_new_tokens=%d", res.MaxNewEffective)
	}
	for _, l := range a.Limits {
		if total := r.promptTokens() + out; total == l.Value || total == l.Value-1 {
			return fmt.Sprintf("%s=%d (%s)", l.Name, l.Value, l.Source)
		}
	}
	return ""
}

func sourcesOf(id int32, r Run, a Audit) string {
	src := slices.Clone(a.Sources(id))
	for i, s := range r.StopSequences {
		if name := fmt.Sprintf("request stop sequence %d", i); len(s) == 1 && s[0] == id && !slices.Contains(src, name) {
			src = append(src, name)
		}
	}
	if len(src) == 0 {
		return "the engine's own stop set"
	}
	return strings.Join(src, ", ")
}

// promptStopIDs lists the stop/EOS ids found in the prompt, with positions.
func promptStopIDs(prompt []int32, a Audit, active []int32) []string {
	var out []string
	for i, id := range prompt {
		if a.Sources(id) != nil || slices.Contains(active, id) {
			out = append(out, fmt.Sprintf("%d at position %d", id, i))
		}
	}
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("and %d more", len(out)-8))
	}
	return out
}

// eosProbability is the summed probability of the watched ids at step i.
func eosProbability(r Run, i int) (float64, bool) {
	if i < 0 || i >= len(r.Tokens) || len(r.Tokens[i].Watched) == 0 {
		return 0, false
	}
	p := 0.0
	for _, lp := range r.Tokens[i].Watched {
		if !lp.Valid() {
			return 0, false
		}
		p += math.Exp(float64(lp))
	}
	return p, true
}

// quote names a token: ` "<|im_end|>"` with a leading space, or nothing.
func quote(pieces func(int32) string, id int32) string {
	if pieces == nil || pieces(id) == "" {
		return ""
	}
	return fmt.Sprintf(" %q", pieces(id))
}
